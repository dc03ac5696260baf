"""Package attributes that import their module on first use (PEP 562).

`import keras_resnets` and `keras-resnets --help` must not import TensorFlow
(seconds, and C++ log lines), and a later JAX backend must not get it at all:
so the package `__init__` files name their public attributes and the module
that defines each, and `attach` loads a module when one of its names is
first read. `from keras_resnets import ResNet50`, `keras_resnets.train`,
`dir(keras_resnets)` and `__all__` work as with eager imports.

Example, in a package's `__init__.py`:

>>> __getattr__, __dir__ = attach(__name__, {"train": "keras_resnets.training.loop"})  # doctest: +SKIP
"""

import importlib
import importlib.abc
import importlib.util
import sys


def attach(package, attributes, submodules=()):
    """`(__getattr__, __dir__)` for the package named `package`.

    Args:
        package: the package's `__name__`.
        attributes: `{public name: module path}`: reading `package.NAME`
            imports the module and returns its attribute `NAME`.
        submodules: names of sub-modules that reading `package.NAME`
            imports (as eager imports of the package used to).

    Returns:
        The two functions to assign to the package's `__getattr__` and
        `__dir__`. A name, once loaded, is stored in the package, so
        `__getattr__` runs once per name.
    """
    attributes = dict(attributes)
    submodules = frozenset(submodules)

    def __getattr__(name):
        if name in attributes:
            value = getattr(importlib.import_module(attributes[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(attributes) | submodules)

    return __getattr__, __dir__


def when_imported(name, callback):
    """Calls `callback()` once the top-level module `name` is imported: now
    if it is already, else just after its import completes.

    A finder placed first on `sys.meta_path` wraps the loader of `name`'s
    spec so that `callback` runs after the module's code, and leaves
    `sys.meta_path` only then. A look-up that imports nothing
    (`importlib.util.find_spec(name)`, which TensorFlow's `__init__` makes
    for "keras" before importing it) does not use it up: a finder that left
    at the first `find_spec` missed the real import that followed, and
    `keras-resnets export` could not read the models that `train` wrote.

    `import keras_resnets` uses it to register its layers with Keras as soon
    as Keras is imported, without importing Keras itself, so that a user's
    `keras.saving.load_model` reads keras_resnets models whatever the order
    of the imports. The package's own readers of model files do not depend
    on it (`keras_resnets.models.saving.load_model`).
    """
    if name in sys.modules:
        callback()
    else:
        sys.meta_path.insert(0, _ImportHook(name, callback, before=False))


def before_imported(name, callback):
    """Calls `callback()` just before the code of the top-level module `name`
    runs at its first import; never if it is imported already.

    As `when_imported`, a look-up that imports nothing
    (`importlib.util.find_spec(name)`) does not call it. `import
    keras_resnets` uses it to load PyTorch's `triton` and torch before
    TensorFlow where Keras runs on PyTorch
    (`keras_resnets.utils.backend.torch_before_tensorflow`).
    """
    if name not in sys.modules:
        sys.meta_path.insert(0, _ImportHook(name, callback, before=True))


class _ImportHook(importlib.abc.MetaPathFinder):
    def __init__(self, name, callback, before):
        self.name, self.callback, self.before = name, callback, before

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        spec = self._spec_after_this(fullname, path, target)
        if spec is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _CallbackLoader(spec.loader, self._run, self.before)
        return spec

    def _spec_after_this(self, fullname, path, target):
        """The spec that the finders after this one give (the real one)."""
        finders = sys.meta_path
        later = finders[finders.index(self) + 1:] if self in finders else finders
        for finder in later:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                return spec
        return None

    def _run(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.callback()


class _CallbackLoader(importlib.abc.Loader):
    def __init__(self, loader, callback, before):
        self.loader, self.callback, self.before = loader, callback, before

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        if self.before:
            self.callback()
        self.loader.exec_module(module)
        if not self.before:
            self.callback()

    def __getattr__(self, attribute):  # get_data, get_filename, is_package, ...
        return getattr(self.loader, attribute)
