"""`MockEngine`: in-memory PlaceOS systems that real `PlaceOSServer` sessions serve.

The Python counterpart of the mock mode of PlaceOS's TypeScript client, but on the
server side of a real WebSocket: systems hold modules (a name, a 1-based index, a
module id ``mod-...``), modules hold status variables and methods (Python callables).
Attach sessions with `MockEngine.new_session` (or pass the engine as a session's
``handler``); the engine answers their requests:

- ``bind``: success, then the variable's current value as a notify (when it exists),
  then a notify for every change (`set_status`), until ``unbind``. A variable that
  does not exist yet can be bound: its first `set_status` is notified.
- ``exec``: calls the method with the request's ``args``; its return value (which must
  be JSON-encodable) is the success's ``value``.
- ``debug``: ``mod`` is a module id (what clients send) or a module name; the success
  carries the module id, and every `log` line of that module is forwarded until
  ``ignore``.

Error numbers, checked in this order:

====  ====================  ==============================================================
2     ACCESS_DENIED         the module name starts with ``_`` (protected, as in PlaceOS)
5     SYSTEM_NOT_FOUND      no such system
6     MODULE_NOT_FOUND      no module of that name and index (or id, for debug) in it
1     BAD_REQUEST           exec: no such method, or arguments that do not fit its
                            signature (checked with `inspect.signature` before the call)
3     REQUEST_FAILED        exec: the method raised (the message is the exception's text,
                            or its class name when the text is empty); a `TypeError`
                            raised *inside* the method is a 3 too
7     UNEXPECTED_FAILURE    exec: the method returned something JSON cannot carry
====  ====================  ==============================================================

Errors 0, 1 (malformed request) and 4 come from the session itself, before the engine.

Status changes reach every attached session bound to the variable, and only those:
a status set from application code wakes those sessions' transports (see
`PlaceOSServer.wakeup`). A value equal (as JSON) to the current one notifies nobody
unless ``force=True``; values are stored as a JSON copy, so later changes to the
object passed in do not leak in.

Not thread-safe by design: drive the engine and its sessions from one thread or one
event loop, as sans-IO code is.

The systems file
----------------

`MockEngine.from_config` takes a mapping, as read from JSON or TOML::

    {
      "systems": {
        "sys-room1": {                          # the system id
          "name": "Meeting Room 1",             # optional
          "modules": [
            {
              "name": "Display",                # required
              "index": 1,                       # optional: next free index of that name
              "id": "mod-room1-display",        # optional: "mod-<n>" generated
              "klass": "::Place::Display",      # optional: the driver class in debug lines
              "status": {"power": false, "input": "hdmi1"},   # any JSON values
              "methods": {
                "power": {
                  "params": ["state"],          # positional parameters (exact arity)
                  "log": "power -> $state",     # optional: a debug line, or
                                                #   {"level": "info", "message": "..."}
                  "sets": {"power": "$state"},  # optional: status variables to set
                  "returns": "$state"           # optional: the exec's value (else null)
                },
                "reboot": {"raises": "device not responding"}  # error 3 with this text
              }
            }
          ]
        }
      }
    }

Inside ``log``, ``sets`` and ``returns``, a string that is exactly ``$name`` (or
``${name}``) is replaced by that argument as it came (any JSON type); other strings
have ``$name`` replaced by the argument's text (strings as they are, other values as
JSON), and ``$$`` is a literal ``$``. Placeholders must name a parameter. A method
runs in this order: ``log``, then ``raises`` (which excludes ``sets`` and ``returns``),
then ``sets``, then ``returns``. A ``description`` key is allowed (and ignored) at every
level; any other unknown key is an error, so typos do not pass silently. Mistakes raise
`ConfigError` naming where (``systems.sys-room1.modules[0].methods.power.sets``).
"""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import attrs

from protocore import _json
from protocore.errors import EncodeError, LocalProtocolError, describe_value

from .models import Bind, Binding, Command, Debug, Dialect, ErrorCode, Exec, LogLevel
from .server import DEFAULT_PATH, PlaceOSServer

__all__ = ["MockEngine", "ConfigError"]


class ConfigError(LocalProtocolError):
    """A systems file (or mapping) `MockEngine.from_config` cannot use; says where."""


@attrs.define(eq=False)
class _Module:
    sys_id: str
    name: str
    index: int
    module_id: str
    klass: str | None
    status: dict[str, Any] = attrs.Factory(dict)
    encoded: dict[str, bytes] = attrs.Factory(dict)
    methods: dict[str, Callable[..., Any]] = attrs.Factory(dict)
    # One Binding per status variable, made once: the codec knows a binding it has
    # encoded by identity, so a fresh one per change would miss that every time.
    bindings: dict[str, Binding] = attrs.Factory(dict)

    def binding(self, name: str) -> Binding:
        binding = self.bindings.get(name)
        if binding is None:
            binding = self.bindings[name] = Binding(self.sys_id, self.name, self.index, name)
        return binding


@attrs.define(eq=False)
class _System:
    sys_id: str
    name: str
    modules: dict[tuple[str, int], _Module] = attrs.Factory(dict)


def _check_name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise LocalProtocolError(f"{what} must be a non-empty str, not {describe_value(value)}")
    return value


def _check_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LocalProtocolError(f"index must be a positive int, not {describe_value(value)}")
    return value


class MockEngine:
    """In-memory systems, modules, status variables and methods (see the module doc).

    Implements `protocore.placeos.RequestHandler`: every session created by
    `new_session`, or built with ``handler=engine``, is served by it.
    """

    __slots__ = ("_module_ids", "_next_id", "_sessions", "_systems")

    def __init__(self) -> None:
        self._systems: dict[str, _System] = {}
        self._module_ids: dict[str, _Module] = {}
        self._sessions: dict[PlaceOSServer, None] = {}  # insertion-ordered set
        self._next_id = 1

    def __repr__(self) -> str:
        modules = len(self._module_ids)
        return (
            f"<MockEngine systems={len(self._systems)} modules={modules} "
            f"sessions={len(self._sessions)}>"
        )

    # -- building ----------------------------------------------------------------------

    def add_system(self, sys_id: str, *, name: str | None = None) -> None:
        """A new, empty system (``sys_id`` such as ``"sys-Z6XXA-Kc_v"``)."""
        _check_name(sys_id, "sys_id")
        if name is not None and not isinstance(name, str):
            raise LocalProtocolError("name must be a str or None")
        if sys_id in self._systems:
            raise LocalProtocolError(f"system {sys_id!r} already exists")
        self._systems[sys_id] = _System(sys_id, name if name is not None else sys_id)

    def add_module(
        self,
        sys_id: str,
        name: str,
        *,
        index: int | None = None,
        module_id: str | None = None,
        klass: str | None = None,
        status: Mapping[str, Any] | None = None,
        methods: Mapping[str, Callable[..., Any]] | None = None,
    ) -> str:
        """Add a module to a system; returns its module id.

        ``index`` defaults to the next free one for ``name`` in the system (1 for the
        first). ``module_id`` defaults to ``"mod-<n>"``; ids are unique in the engine.
        ``status`` gives initial values (JSON-encodable); ``methods`` maps method names
        to callables taking the exec's arguments positionally.
        """
        system = self._system(sys_id)
        _check_name(name, "module name")
        if index is None:
            index = 1
            while (name, index) in system.modules:
                index += 1
        _check_index(index)
        if (name, index) in system.modules:
            raise LocalProtocolError(f"system {sys_id!r} already has module {name}_{index}")
        if module_id is None:
            module_id = self._new_module_id()
        _check_name(module_id, "module_id")
        if module_id in self._module_ids:
            raise LocalProtocolError(f"module id {module_id!r} is already used")
        if klass is not None and not isinstance(klass, str):
            raise LocalProtocolError("klass must be a str or None")
        module = _Module(sys_id, name, index, module_id, klass)
        for key, value in (status or {}).items():
            _check_name(key, "status variable name")
            encoded = _json.dumps(value)  # EncodeError before anything is added
            module.status[key] = _json.loads(encoded)
            module.encoded[key] = _json.kept(encoded)
        for key, fn in (methods or {}).items():
            _check_name(key, "method name")
            if not callable(fn):
                raise LocalProtocolError(f"method {key!r} is not callable")
            module.methods[key] = fn
        system.modules[name, index] = module
        self._module_ids[module_id] = module
        return module_id

    def add_method(
        self, sys_id: str, mod: str, name: str, fn: Callable[..., Any], *, index: int = 1
    ) -> None:
        """Add or replace a method of a module."""
        _check_name(name, "method name")
        if not callable(fn):
            raise LocalProtocolError(f"method {name!r} is not callable")
        self._module(sys_id, mod, index).methods[name] = fn

    def _new_module_id(self) -> str:
        while True:
            candidate = f"mod-{self._next_id}"
            self._next_id += 1
            if candidate not in self._module_ids:
                return candidate

    # -- looking up --------------------------------------------------------------------

    def _system(self, sys_id: str) -> _System:
        system = self._systems.get(sys_id)
        if system is None:
            raise KeyError(f"no system {sys_id!r}")
        return system

    def _module(self, sys_id: str, mod: str, index: int) -> _Module:
        module = self._find(self._system(sys_id), mod, index)
        if module is None:
            raise KeyError(f"no module {mod!r} (index {index}) in system {sys_id!r}")
        return module

    def _find(self, system: _System, mod: str, index: int) -> _Module | None:
        """By name and index, else by module id (within the system)."""
        module = system.modules.get((mod, index))
        if module is None:
            by_id = self._module_ids.get(mod)
            if by_id is not None and by_id.sys_id == system.sys_id:
                module = by_id
        return module

    def module_id(self, sys_id: str, mod: str, *, index: int = 1) -> str:
        """The module id of module ``mod`` (name) at ``index`` in ``sys_id``."""
        return self._module(sys_id, mod, index).module_id

    @property
    def system_ids(self) -> tuple[str, ...]:
        return tuple(self._systems)

    def modules(self, sys_id: str) -> tuple[tuple[str, int, str], ...]:
        """The modules of a system as (name, index, module id), in the order added."""
        return tuple((m.name, m.index, m.module_id) for m in self._system(sys_id).modules.values())

    def status(self, sys_id: str, mod: str, name: str, *, index: int = 1) -> Any:
        """A status variable's current value. `KeyError` when the system, the module
        (a name, or a module id) or the variable does not exist."""
        module = self._module(sys_id, mod, index)
        try:
            return module.status[name]
        except KeyError:
            raise KeyError(f"module {module.name}_{module.index} has no status {name!r}") from None

    # -- changing state ----------------------------------------------------------------

    def set_status(
        self, sys_id: str, mod: str, name: str, value: Any, *, index: int = 1, force: bool = False
    ) -> int:
        """Set a status variable (creating it) and notify every session bound to it.

        Returns how many sessions were notified. A value equal to the current one (as
        JSON) notifies nobody unless ``force``. `EncodeError` when ``value`` is not
        JSON-encodable (nothing changes); `KeyError` for an unknown system or module.
        """
        module = self._module(sys_id, mod, index)
        _check_name(name, "status variable name")
        encoded = _json.dumps(value)
        if not force and module.encoded.get(name) == encoded:
            return 0
        stored = _json.loads(encoded)
        module.status[name] = stored
        module.encoded[name] = _json.kept(encoded)
        binding = module.binding(name)
        reached = 0
        for session in tuple(self._sessions):
            if session.send_notify(binding, stored):
                reached += 1
        return reached

    def log(
        self,
        sys_id: str,
        mod: str,
        message: str,
        *,
        level: LogLevel | str = LogLevel.DEBUG,
        index: int = 1,
        klass: str | None = None,
    ) -> int:
        """A log line of a module, sent to every session debugging it.

        ``klass`` overrides the module's driver class. Returns how many sessions got it.
        """
        module = self._module(sys_id, mod, index)
        if not isinstance(message, str):
            raise LocalProtocolError("message must be a str")
        klass = module.klass if klass is None else klass
        reached = 0
        for session in tuple(self._sessions):
            if session.send_debug(module.module_id, message, level=level, klass=klass):
                reached += 1
        return reached

    # -- sessions ----------------------------------------------------------------------

    def new_session(
        self,
        *,
        api_keys: Sequence[str] = (),
        bearer_tokens: Sequence[str] = (),
        allow_anonymous: bool = False,
        bad_requests: Literal["reply", "drop"] = "reply",
        dialect: Dialect = Dialect.CURRENT,
        path: str | None = DEFAULT_PATH,
        pong_interval: float | None = 80.0,
        wakeup: Callable[[], None] | None = None,
    ) -> PlaceOSServer:
        """A `PlaceOSServer` served by this engine (one per connection), attached now.

        It detaches itself when its connection is lost (or a handshake refused).
        """
        server = PlaceOSServer(
            api_keys=api_keys,
            bearer_tokens=bearer_tokens,
            allow_anonymous=allow_anonymous,
            handler=self,
            bad_requests=bad_requests,
            dialect=dialect,
            path=path,
            pong_interval=pong_interval,
            wakeup=wakeup,
        )
        self._sessions[server] = None
        return server

    @property
    def sessions(self) -> int:
        """How many sessions are attached."""
        return len(self._sessions)

    def iter_sessions(self) -> Iterator[PlaceOSServer]:
        """The attached sessions, oldest first."""
        return iter(tuple(self._sessions))

    def session_closed(self, server: PlaceOSServer) -> None:
        """Detach ``server`` (its connection is gone). Idempotent."""
        self._sessions.pop(server, None)

    def handle_request(self, server: PlaceOSServer, request: Command) -> None:
        """Answer one request of ``server`` (attaching it if it was built by hand)."""
        if server.closed:
            return
        self._sessions.setdefault(server, None)
        module = self._resolve(server, request)
        if module is None:
            return
        if isinstance(request, Exec):
            self._exec(server, request, module)
        elif isinstance(request, Bind):
            if request.name in module.status:
                server.reply_success(request, value=module.status[request.name])
            else:
                server.reply_success(request)
        elif isinstance(request, Debug):
            server.reply_success(request, module_id=module.module_id)
        else:  # unbind and ignore are answered by the session; nothing else remains
            server.reply_success(request)

    def _resolve(self, server: PlaceOSServer, request: Command) -> _Module | None:
        """The module a request addresses, or None after answering with the error."""
        mod = request.mod
        if mod.startswith("_"):
            server.reply_error(
                request,
                ErrorCode.ACCESS_DENIED,
                f"access denied to protected module {describe_value(mod)}",
            )
            return None
        system = self._systems.get(request.sys)
        if system is None:
            server.reply_error(
                request,
                ErrorCode.SYSTEM_NOT_FOUND,
                f"system {describe_value(request.sys)} not found",
            )
            return None
        if isinstance(request, Debug):
            module = self._find(system, mod, request.index)
        else:
            module = system.modules.get((mod, request.index))
        if module is None:
            server.reply_error(
                request,
                ErrorCode.MODULE_NOT_FOUND,
                f"module {describe_value(mod)} (index {request.index}) not found in system "
                f"{describe_value(request.sys)}",
            )
        return module

    def _exec(self, server: PlaceOSServer, request: Exec, module: _Module) -> None:
        fn = module.methods.get(request.name)
        if fn is None:
            server.reply_error(
                request,
                ErrorCode.BAD_REQUEST,
                f"module {module.name}_{module.index} has no method {describe_value(request.name)}",
            )
            return
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins have none: just call
            signature = None
        if signature is not None:
            try:
                signature.bind(*request.args)
            except TypeError as exc:
                server.reply_error(
                    request,
                    ErrorCode.BAD_REQUEST,
                    f"bad arguments for {module.name}.{request.name}: {exc}",
                )
                return
        try:
            result = fn(*request.args)
        except Exception as exc:
            server.reply_error(request, ErrorCode.REQUEST_FAILED, str(exc) or type(exc).__name__)
            return
        try:
            server.reply_success(request, value=result)
        except EncodeError:
            server.reply_error(
                request,
                ErrorCode.UNEXPECTED_FAILURE,
                f"{module.name}.{request.name} returned a value JSON cannot carry",
            )

    # -- the systems file --------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MockEngine:
        """An engine built from a systems mapping (see the module doc for the format)."""
        engine = cls()
        _Loader(engine).load(config)
        return engine


# -- the systems-file loader --------------------------------------------------------------

_DESCRIPTION = "description"
_PLACEHOLDER = re.compile(r"\$(?:(\w+)|\{(\w+)\})\Z")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json.dumps(value).decode("utf-8")


def _render(template: Any, args: Mapping[str, Any]) -> Any:
    """``template`` with ``$name`` placeholders filled from ``args`` (see the doc)."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.match(template)
        if whole is not None:
            return args[whole.group(1) or whole.group(2)]
        if "$" not in template:
            return template
        return string.Template(template).safe_substitute({k: _text(v) for k, v in args.items()})
    if isinstance(template, list):
        return [_render(item, args) for item in template]
    if isinstance(template, dict):
        return {key: _render(item, args) for key, item in template.items()}
    return template


def _placeholders(template: Any) -> Iterator[str]:
    if isinstance(template, str):
        if "$" in template:
            yield from string.Template(template).get_identifiers()
    elif isinstance(template, list):
        for item in template:
            yield from _placeholders(item)
    elif isinstance(template, dict):
        for item in template.values():
            yield from _placeholders(item)


class _ScriptFailure(Exception):
    """What a scripted method's ``raises`` raises."""


@attrs.frozen(eq=False)
class _Script:
    """A scripted method from the systems file, a plain Python callable."""

    engine: MockEngine
    sys_id: str
    mod: str
    index: int
    params: tuple[str, ...]
    log: tuple[str, str] | None = None
    raises: str | None = None
    sets: Mapping[str, Any] = attrs.Factory(dict)
    returns: Any = None

    @property
    def __signature__(self) -> inspect.Signature:  # what the engine checks args against
        kind = inspect.Parameter.POSITIONAL_ONLY
        return inspect.Signature([inspect.Parameter(name, kind) for name in self.params])

    def __call__(self, *values: Any) -> Any:
        if len(values) != len(self.params):
            raise TypeError(f"takes {len(self.params)} arguments, got {len(values)}")
        args = dict(zip(self.params, values, strict=True))
        engine = self.engine
        if self.log is not None:
            level, message = self.log
            engine.log(self.sys_id, self.mod, _render(message, args), level=level, index=self.index)
        if self.raises is not None:
            raise _ScriptFailure(_render(self.raises, args))
        for name, template in self.sets.items():
            engine.set_status(
                self.sys_id, self.mod, name, _render(template, args), index=self.index
            )
        return _render(self.returns, args)


class _Loader:
    def __init__(self, engine: MockEngine) -> None:
        self.engine = engine

    @staticmethod
    def _mapping(value: Any, path: str, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected an object, got {describe_value(value)}")
        unknown = [key for key in value if key not in allowed and key != _DESCRIPTION]
        if unknown:
            raise ConfigError(
                f"{path}: unknown key {describe_value(unknown[0])} "
                f"(expected {', '.join(sorted(allowed))})"
            )
        return value

    @staticmethod
    def _str(value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: expected a non-empty string, got {describe_value(value)}")
        return value

    def load(self, config: Mapping[str, Any]) -> None:
        top = self._mapping(config, "config", {"systems"})
        systems = self._mapping_any(top.get("systems", {}), "systems")
        for sys_id, spec in systems.items():
            path = f"systems.{sys_id}"
            self._system(sys_id, spec, path)

    def _mapping_any(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected an object, got {describe_value(value)}")
        return value

    def _system(self, sys_id: Any, spec: Any, path: str) -> None:
        self._str(sys_id, path)
        spec = self._mapping(spec, path, {"name", "modules"})
        name = spec.get("name")
        if name is not None:
            self._str(name, f"{path}.name")
        self.engine.add_system(sys_id, name=name)
        modules = spec.get("modules", [])
        if not isinstance(modules, list):
            raise ConfigError(f"{path}.modules: expected an array, got {describe_value(modules)}")
        for i, module in enumerate(modules):
            self._module(sys_id, module, f"{path}.modules[{i}]")

    def _module(self, sys_id: str, spec: Any, path: str) -> None:
        spec = self._mapping(spec, path, {"name", "index", "id", "klass", "status", "methods"})
        if "name" not in spec:
            raise ConfigError(f"{path}.name: missing")
        name = self._str(spec["name"], f"{path}.name")
        index = spec.get("index")
        if index is not None and (
            isinstance(index, bool) or not isinstance(index, int) or index < 1
        ):
            raise ConfigError(f"{path}.index: expected a positive integer")
        module_id = spec.get("id")
        if module_id is not None:
            self._str(module_id, f"{path}.id")
        klass = spec.get("klass")
        if klass is not None:
            self._str(klass, f"{path}.klass")
        status = self._mapping_any(spec.get("status", {}), f"{path}.status")
        for key, value in status.items():
            try:
                _json.dumps(value)
            except EncodeError:
                raise ConfigError(f"{path}.status.{key}: not a JSON value") from None
        methods = self._mapping_any(spec.get("methods", {}), f"{path}.methods")
        try:
            module_id = self.engine.add_module(
                sys_id, name, index=index, module_id=module_id, klass=klass, status=status
            )
        except LocalProtocolError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        real_index = next(i for n, i, m in self.engine.modules(sys_id) if m == module_id)
        for method, method_spec in methods.items():
            script = self._method(sys_id, name, real_index, method_spec, f"{path}.methods.{method}")
            self.engine.add_method(sys_id, name, self._str(method, path), script, index=real_index)

    def _method(self, sys_id: str, mod: str, index: int, spec: Any, path: str) -> _Script:
        spec = self._mapping(spec, path, {"params", "log", "sets", "raises", "returns"})
        params = spec.get("params", [])
        if not isinstance(params, list) or not all(
            isinstance(p, str) and p.isidentifier() for p in params
        ):
            raise ConfigError(f"{path}.params: expected an array of parameter names")
        if len(set(params)) != len(params):
            raise ConfigError(f"{path}.params: a parameter is named twice")
        log = spec.get("log")
        log_line: tuple[str, str] | None = None
        if isinstance(log, str):
            log_line = (LogLevel.DEBUG.value, log)
        elif log is not None:
            log_spec = self._mapping(log, f"{path}.log", {"level", "message"})
            level = self._str(log_spec.get("level", "debug"), f"{path}.log.level")
            if "message" not in log_spec or not isinstance(log_spec["message"], str):
                raise ConfigError(f"{path}.log.message: expected a string")
            log_line = (level, log_spec["message"])
        raises = spec.get("raises")
        if raises is not None and not isinstance(raises, str):
            raise ConfigError(f"{path}.raises: expected a string (the error message)")
        sets = self._mapping_any(spec.get("sets", {}), f"{path}.sets")
        if raises is not None and (sets or "returns" in spec):
            raise ConfigError(f"{path}: raises excludes sets and returns")
        returns = spec.get("returns")
        for key, template in (
            ("log", None if log_line is None else log_line[1]),
            ("raises", raises),
            ("sets", dict(sets)),
            ("returns", returns),
        ):
            for name in _placeholders(template):
                if name not in params:
                    raise ConfigError(f"{path}.{key}: ${name} is not a parameter")
            if key in {"sets", "returns"}:
                try:
                    _json.dumps(template)
                except EncodeError:
                    raise ConfigError(f"{path}.{key}: not a JSON value") from None
        return _Script(
            self.engine,
            sys_id,
            mod,
            index,
            tuple(params),
            log=log_line,
            raises=raises,
            sets=dict(sets),
            returns=returns,
        )
