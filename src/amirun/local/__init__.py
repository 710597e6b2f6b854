"""Local rehearsal: the real workflow and handlers on the embedded AWS emulator (moto)."""
