"""`L2SGD`: SGD with momentum and L2 weight decay added to the gradient, as
the ResNet papers and PyTorch's `torch.optim.SGD(weight_decay=...)` compute it.

Keras's `SGD(weight_decay=wd)` decays *decoupled* from the gradient: each
step shrinks a weight by `lr * wd * w` outside the momentum (Loshchilov &
Hutter's "decoupled weight decay"). The papers (He et al. 2015, section 3.4
and 4.2), their Torch code and torchvision's reference add `wd * w` to the
gradient before the momentum buffer, where it accumulates: at momentum 0.9 the
same number decays about ten times as strongly. The recipes of
`keras_resnets.training.recipes` mean the papers' decay, so they use this
optimizer.

The update of a weight `w` with gradient `g` at learning rate `lr`
(PyTorch's, `torch/optim/sgd.py`, dampening 0):

```python
d = g + l2 * w                    # l2 = 0 for the weights in `l2_exclude`
buf = momentum * buf + d          # (buf starts at 0, so the first step makes it d)
d = d + momentum * buf if nesterov else buf
w = w - lr * d
```

Unlike Keras's `SGD`, whose velocity holds `lr * g`, the momentum buffer
holds the gradients alone, so a change of learning rate (a step of the
schedule) applies at once to the whole update, as in PyTorch.

The decay is inside the optimizer's update (not model losses): `fit`,
`keras_resnets.training.distribute.DistributedSteps` (which calls
`apply_gradients` itself) and any custom loop get it alike.
"""

import keras
from keras import ops

from keras_resnets.utils.validation import UsageError


@keras.saving.register_keras_serializable(package="keras_resnets")
class L2SGD(keras.optimizers.SGD):
    """SGD with momentum and L2 weight decay coupled to the gradient
    (`torch.optim.SGD`'s `weight_decay`).

    Args:
        learning_rate: float or a `keras.optimizers.schedules` schedule.
        momentum: float in [0, 1]. Defaults to 0.9.
        nesterov: bool, Nesterov momentum (PyTorch's form). Defaults to False.
        l2: float >= 0, the L2 coefficient: `l2 * w` is added to each
            gradient before the momentum. Defaults to 1e-4.
        l2_exclude: names of variables that get no decay (a variable's
            `name`, e.g. "gamma", "beta", "bias": batch norm's scale and
            shift and the biases). Defaults to none.
        **kwargs: the other `keras.optimizers.Optimizer` arguments, except
            `weight_decay` (the decoupled kind this class replaces).

    Example:

    >>> optimizer = L2SGD(0.1, momentum=0.9, l2=1e-4)  # doctest: +SKIP
    >>> model.compile(optimizer, "sparse_categorical_crossentropy")  # doctest: +SKIP
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, l2=1e-4, l2_exclude=(),
                 name="l2sgd", **kwargs):
        if kwargs.get("weight_decay") is not None:
            raise UsageError(
                "L2SGD adds its decay to the gradient (`l2`); Keras's decoupled `weight_decay` is "
                f"not taken too; received weight_decay={kwargs['weight_decay']!r}."
            )
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, momentum=float(momentum), nesterov=bool(nesterov),
                         name=name, **kwargs)
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not l2 >= 0:
            raise UsageError(f"`l2` must be a number >= 0; received l2={l2!r}.")
        if isinstance(l2_exclude, str):
            l2_exclude = (l2_exclude,)
        self.l2 = float(l2)
        self.l2_exclude = tuple(l2_exclude)

    def decays(self, variable):
        """Whether `variable`, a model variable, gets the L2 term: by the
        last part of its name ("gamma", "kernel", ...)."""
        leaf = variable.name.split("/")[-1].split(":")[0]
        return self.l2 > 0 and leaf not in self.l2_exclude

    def build(self, var_list):
        # Decided here, once per model variable, and looked up by the
        # variable's index in `update_step`: under a distribution strategy
        # `update_step` sees each replica's copy, whose name is not the
        # variable's ("bn/gamma/replica_1:0"), and a decision by that name
        # left the copies of an excluded variable apart.
        if self.built:
            return
        super().build(var_list)
        self._decayed = [self.decays(variable) for variable in var_list]

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        index = self._get_variable_index(variable)
        if self._decayed[index]:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, variable.dtype), variable))
        if self.momentum != 0:
            momentum = ops.cast(self.momentum, variable.dtype)
            buf = self.momentums[index]
            self.assign(buf, ops.add(ops.multiply(buf, momentum), gradient))
            gradient = ops.add(gradient, ops.multiply(buf, momentum)) if self.nesterov else buf
        self.assign_sub(variable, ops.multiply(gradient, learning_rate))

    def get_config(self):
        config = super().get_config()
        config.update(l2=self.l2, l2_exclude=list(self.l2_exclude))
        return config
