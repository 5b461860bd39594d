"""The collector's policy beyond storing records: the acquirer run on each stored batch, deny-list deltas
and fleet bundles owed to each terminal, their delivery and refusal, heartbeats (STATUS).  All of it
kept in the Store (host_sim/backend/store.py)."""

import logging
import os

from host_sim.backend import acquirer
from protocol import bundle, link, record

log = logging.getLogger("collector")

HEALTH_NAMES = ((link.HEALTH_JOURNAL, "journal"), (link.HEALTH_CLOCK, "clock"), (link.HEALTH_CONFIG, "config"),
                (link.HEALTH_SCANNER, "scanner"), (link.HEALTH_NFC, "nfc"))


def health_names(health):
    """The STATUS health bits that are set, by name (protocol/SPEC.md "STATUS fields")."""
    return [name for bit, name in HEALTH_NAMES if health & bit]


class Backoffice:
    """What a session needs beyond record storage: the acquirer, config bundles per terminal, heartbeats.
    All of it kept in the Store (host_sim/backend/store.py)."""

    def __init__(self, store, acquirer_=None, bundles=None):
        self.store = store
        self.acquirer = acquirer_
        self.bundles = bundles  # directory of signed fleet bundles (*.zfb, `python -m host_sim bundle make`)
        self._newest = None  # (directory mtime, {kind: (version, bytes)}) of that directory
        if acquirer_ is not None:  # records stored while no acquirer ran (or by an older collector)
            self._log(*acquirer.authorise_pending(store, acquirer_))

    def authorise(self, recs):
        """Decide a frame's newly received records; call it inside the transaction that stores them,
        so records and decisions commit together (and a group commit covers both)."""
        if self.acquirer is None:
            return
        rows = [(r["terminal"].hex(), r["seq"], r["token"], r["amount"], r["ext"].get(record.EXT_ATC))
                for r in recs if r["decision"] == record.ACCEPTED]
        if rows:
            with self.store.transaction():
                self._log(*acquirer.authorise(self.store, self.acquirer, rows))

    def _log(self, approved, declined, version=None):
        if declined:
            log.info("acquirer: %d approved, %d declined; deny list at version %d", approved, declined,
                     self.store.deny_list_version() if version is None else version)

    def deny_delta(self, terminal):
        """(base, version, tokens) the terminal still needs, at most one bundle's worth; None if current."""
        base = self.store.delivered_version(terminal, bundle.KIND_DENY)
        rows = self.store.deny_list_since(base, bundle.MAX_TOKENS)
        if not rows:
            return None
        return base, rows[-1][1], [r[0] for r in rows]

    def fleet_bundle(self, terminal):
        """(kind, version, bytes) of the newest fleet bundle of a kind the terminal lacks and did not
        refuse; None if current.  The directory is read again whenever its modification time changed (a
        bundle file was added, renamed or removed), so a new bundle reaches the next offer without a scan
        per uploaded frame."""
        if self.bundles is None:
            return None
        from host_sim.tools import bundle as fleet_bundles

        changed = os.stat(self.bundles).st_mtime_ns
        if self._newest is None or self._newest[0] != changed:
            self._newest = (changed, fleet_bundles.newest(self.bundles))
        for kind, (version, data) in sorted(self._newest[1].items()):
            if version > self.store.delivered_version(terminal, kind) and \
                    not self.store.config_refused(terminal, kind, version):
                return kind, version, data
        return None

    def refused(self, terminal, kind, version, reason):
        """The terminal refused a fleet bundle (ERROR CONFIG_REJECTED): not offered to it again; a newer
        version of the kind is.  Kept for the operator: a refusal means a bad or mis-signed bundle."""
        self.store.refuse_config(terminal, kind, version, reason)

    def delivered(self, terminal, kind, version):
        self.store.set_delivered(terminal, kind, version)

    def status(self, terminal, msg):
        self.store.put_status(terminal, msg)
