"""The active configuration a tap is decided against: fares, ticket keys, fleet token key, deny list,
revoked ride-code issuers, the terminal profile.

One object, replaced whole: when a bundle is activated the config receiver's callback builds a new
Active with that one part changed and the terminal swaps it in with a single assignment, so a tap never
sees half of an update (the fare of one version with the keys of another).
"""

from protocol import fleet, ticket


class Active:
    def __init__(self, fares=None, keyring=None, token_key=None, deny=None, ride_revoked=None, profile=None):
        self.fares = fares if fares is not None else {}  # credential kind -> fen (fleet fare bundle)
        self.keyring = keyring if keyring is not None else ticket.Keyring()  # the trusted ticket issuers
        self.token_key = token_key  # (version, key) of the fleet token key, or None
        self.deny = deny  # firmware.denylist.DenyList or None (applied in place, atomically, by the receiver)
        self.ride_revoked = ride_revoked  # revoked ride-code issuer keys {(issuer, key id)}; None: not read yet
        self.profile = profile  # the checked profile dict (protocol/profile.py); None: no profile, flat fares

    def with_bundle(self, kind, value):
        """A copy of this configuration with a just-activated bundle's content in place."""
        fares, keyring, token_key, ride_revoked = self.fares, self.keyring, self.token_key, self.ride_revoked
        profile = self.profile
        if kind == fleet.KIND_FARES:
            fares = value
        elif kind == fleet.KIND_TICKET_KEYS:
            keyring = value
        elif kind == fleet.KIND_TOKEN_KEY:
            token_key = value
        elif kind == fleet.KIND_RIDE_REVOKED:
            ride_revoked = value
        elif kind == fleet.KIND_PROFILE:
            profile = value
        return Active(fares, keyring, token_key, self.deny, ride_revoked, profile)
