"""Moved: the λ path on a user's Keras model is :mod:`regcore_apps.path.keras_problem`."""

raise ImportError("regcore_adapters.tf.path moved to regcore_apps.path.keras_problem "
                  "(from regcore_apps.path.keras_problem import ModelProblem)")
