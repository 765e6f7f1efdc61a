"""Human handoff: triggers, the packet, the desk's stores and the wiring through Rasa."""
