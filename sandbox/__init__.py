"""A StackOne-compatible sandbox of the assessment orders endpoint, with fault injection.

`order-dispatch sandbox` serves it; tests, the demo and the bench drive its faults and read its
counts over HTTP (`SandboxControl`).
"""

from sandbox.app import Faults, SandboxState, create_app
from sandbox.control import SandboxControl

__all__ = ["Faults", "SandboxControl", "SandboxState", "create_app"]
