"""Moved: the λ path on a user's ``nn.Module`` is :mod:`regcore_apps.path.torch_problem`."""

raise ImportError("regcore_adapters.torch.path moved to regcore_apps.path.torch_problem "
                  "(from regcore_apps.path.torch_problem import ModuleProblem)")
