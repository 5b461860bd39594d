"""The terminal's configuration: what it trusts and what it charges, and how a new version arrives.

    receiver.py  config bundles arriving over the link: staged, verified, activated (ConfigReceiver)
    fleet.py     the active fleet bundles in flash (fares, ticket keys), read without the whole file
    trust.py     trusted public keys read at boot (ticket issuers, the config authority)
    active.py    the one active configuration a tap is decided against, swapped whole when a bundle
                 is activated

Imports run one way only: receiver -> fleet, trust, active; trust -> fleet (lazily); fleet and active
import nothing of this package.
"""
