"""Multi-domain training: data, losses, selective regularization, domain-bridging set, trainer.

    from omni_flows.model.train import TrainConfig, Trainer
    Trainer(TrainConfig.from_dict(yaml.safe_load(open("train.yaml")))).fit()

Public names are loaded lazily so that the configuration can be validated
without importing torch.
"""

from importlib import import_module

_PUBLIC = {"TrainConfig": "config", "TrainingConfigError": "config", "Trainer": "trainer"}

__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
