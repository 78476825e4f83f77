"""What makes two launches of a pooled kernelspec interchangeable (the pool's key), and the KernelManager
that starts a pooled kernel set up like the one that launched the kernelspec.

Each pooled kernel is started by its own jupyter_client KernelManager, set up like the server's
KernelManager that launched its kernelspec (transport, address, signing, ``transport_encryption``),
with a plain LocalProvisioner (this package's provisioner would pool again). So a pooled kernel gets
what a fresh one gets: ports from jupyter_client's port cache, a connection file jupyter_client wrote,
and CurveZMQ keys whenever the server encrypts kernels' channels.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

# Set per launch by jupyter_server (the notebook's path): never part of what makes two launches
# interchangeable, and given to a pooled kernel when it is handed over.
PER_NOTEBOOK_VARS = ("JPY_SESSION_NAME",)
# The launching KernelManager's settings a pooled kernel's own manager copies: where its channels listen
# and how they are protected. Part of the pool's key, so a launch never gets a kernel set up otherwise.
MANAGER_SETTINGS = ("transport", "ip", "transport_encryption", "cache_ports", "shutdown_wait_time")
CONNECTION_FILE_PLACEHOLDER = "{connection_file}"


@dataclass(frozen=True)
class Template:
    """How a pooled kernelspec's kernels start, less what differs per notebook: the pool's key."""

    name: str  # the kernelspec's display name, for log lines
    argv: tuple[str, ...]  # the launch command, with {connection_file} still in it
    env: tuple[tuple[str, str], ...]  # the launch environment, per-notebook variables removed
    manager: tuple[tuple[str, Any], ...]  # MANAGER_SETTINGS and the signature scheme of the launching manager
    encryption: tuple[str, ...] = ()  # the kernelspec's metadata.supported_encryption
    cwd: str = field(default="", compare=False)  # where pooled kernels start: the first launch's folder

    @classmethod
    def of(cls, spec: KernelSpec, launcher: KernelManager | None, argv: list[str], env: dict[str, str], cwd: str | None) -> Template:
        """A launch as the pool sees it: ``argv`` (its launcher's connection file put back as the
        placeholder), ``env`` less the per-notebook variables, and the launcher's channel settings."""
        own_file = os.path.realpath(launcher.connection_file) if launcher is not None else None
        argv = [arg.replace(own_file, CONNECTION_FILE_PLACEHOLDER) if own_file else arg for arg in argv]
        kept = sorted((key, value) for key, value in env.items() if key not in PER_NOTEBOOK_VARS)
        settings: list[tuple[str, Any]] = []
        if launcher is not None:
            settings = [(name, getattr(launcher, name)) for name in MANAGER_SETTINGS if launcher.has_trait(name)]
            settings.append(("signature_scheme", launcher.session.signature_scheme))
        supported = (spec.metadata or {}).get("supported_encryption") or ()
        encryption = (supported,) if isinstance(supported, str) else tuple(str(item) for item in supported)
        return cls(spec.display_name, tuple(argv), tuple(kept), tuple(settings), encryption, cwd or os.getcwd())

    def kernel_spec(self) -> KernelSpec:
        """The kernelspec a pooled kernel's manager starts: this command and environment, already resolved
        by the provisioner's launch (its env entries are not applied a second time)."""
        metadata = {"supported_encryption": list(self.encryption)} if self.encryption else {}
        return KernelSpec(argv=list(self.argv), display_name=self.name, language="python", env={}, metadata=metadata)


class PooledKernelManager(KernelManager):
    """A KernelManager whose kernelspec is a Template's (see Template.kernel_spec), not one found on disk."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        self._pooled_spec = spec
        super().__init__(**kwargs)

    @property
    def kernel_spec(self) -> KernelSpec:
        return self._pooled_spec

    @classmethod
    def for_template(cls, template: Template) -> PooledKernelManager:
        """A manager set up as ``template``'s launcher was, with its own kernel id and connection file in
        Jupyter's runtime folder, and a plain LocalProvisioner."""
        from jupyter_client.provisioning.local_provisioner import LocalProvisioner
        from jupyter_core.paths import jupyter_runtime_dir

        settings = dict(template.manager)
        signature_scheme = settings.pop("signature_scheme", None)
        spec = template.kernel_spec()
        manager = cls(spec, kernel_name=template.name, **settings)
        if signature_scheme:
            manager.session.signature_scheme = signature_scheme
        manager.kernel_id = str(uuid.uuid4())
        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, exist_ok=True)
        manager.connection_file = os.path.join(runtime, f"kernel-{manager.kernel_id}.json")
        manager.provisioner = LocalProvisioner(kernel_id=manager.kernel_id, kernel_spec=spec, parent=manager)
        return manager
