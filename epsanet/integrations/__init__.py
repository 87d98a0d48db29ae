"""Optional integrations with other libraries. ``import epsanet`` imports none of them: each one
imports its library only when it is imported itself (``import epsanet.integrations.ultralytics``)."""
