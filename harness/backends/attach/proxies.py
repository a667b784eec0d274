"""The team's own Toxiproxy, touched only on the proxies the stack file names and only where a drill acted.

A plain :class:`~harness.toxiproxy.ToxiproxyAdapter` would let ``reset()`` (what ``drill cleanup``
does first) enable every proxy and drop every toxic on the server, the team's own included. Here
``reset()`` removes only the toxics a drill added (named ``drill_<fault id>`` by
:class:`harness.faults.network.Toxic`) on the declared proxies; a proxy a drill disabled is enabled
again by that fault's own rollback, from the ledger. Creating or deleting proxies, or touching an
undeclared one, is refused.
"""

from __future__ import annotations

from harness.errors import BackendError
from harness.toxiproxy import Proxy, Toxic, ToxiproxyAdapter

DRILL_TOXIC_PREFIX = "drill_"  # harness.faults.network.Toxic.toxic_name


class ScopedToxiproxy(ToxiproxyAdapter):
    def __init__(self, host: str, port: int, proxies: tuple[str, ...], *, field: str) -> None:
        super().__init__(host, port)
        self.declared = proxies
        self.field = field  # where the proxies are declared, for messages

    def _declared(self, name: str) -> str:
        if name not in self.declared:
            raise BackendError(
                f"proxy {name} on Toxiproxy {self.url} is not one the stack file names: the harness leaves it alone",
                hint=f"declared proxies ({self.field}): {', '.join(self.declared) or 'none'}",
            )
        return name

    def create_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        raise BackendError(
            f"the attach backend never creates proxies (asked for {name})",
            hint=f"create it in your Toxiproxy and name it under {self.field}",
        )

    def delete_proxy(self, name: str) -> None:
        raise BackendError(f"the attach backend never deletes proxies (asked for {name})")

    def set_enabled(self, name: str, enabled: bool) -> None:
        super().set_enabled(self._declared(name), enabled)

    def add_toxic(
        self,
        proxy: str,
        name: str,
        type: str,  # noqa: A002 - Toxiproxy's own word
        stream: str = "downstream",
        toxicity: float = 1.0,
        attributes: dict[str, int | float] | None = None,
    ) -> Toxic:
        return super().add_toxic(self._declared(proxy), name, type, stream, toxicity, attributes)

    def remove_toxic(self, proxy: str, name: str, *, missing_ok: bool = True) -> bool:
        return super().remove_toxic(self._declared(proxy), name, missing_ok=missing_ok)

    def drill_toxics(self) -> dict[str, tuple[str, ...]]:
        """Toxics a drill added that are still on the declared proxies (proxy -> toxic names)."""
        found: dict[str, tuple[str, ...]] = {}
        for name in self.declared:
            left = tuple(t.name for t in self.proxy(name).toxics if t.name.startswith(DRILL_TOXIC_PREFIX))
            if left:
                found[name] = left
        return found

    def reset(self) -> None:
        """Remove the drill's toxics from the declared proxies; nothing else on the server changes."""
        for proxy, toxics in self.drill_toxics().items():
            for toxic in toxics:
                self.remove_toxic(proxy, toxic)
