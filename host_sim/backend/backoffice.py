"""The collector's policy beyond storing records: deferred authorisation of stored records, deny-list
deltas and fleet bundles owed to each terminal, their delivery and refusal, heartbeats (STATUS).  All
of it kept in the Store (host_sim/backend/store.py)."""

import logging
import os
import threading

from host_sim.backend import acquirer
from protocol import bundle, fleet, link, record, tokenkey

log = logging.getLogger("collector")

HEALTH_NAMES = ((link.HEALTH_JOURNAL, "journal"), (link.HEALTH_CLOCK, "clock"), (link.HEALTH_CONFIG, "config"),
                (link.HEALTH_SCANNER, "scanner"), (link.HEALTH_NFC, "nfc"))


def health_names(health):
    """The STATUS health bits that are set, by name (protocol/SPEC.md "STATUS fields")."""
    return [name for bit, name in HEALTH_NAMES if health & bit]


def _kind_order(item):
    """Fleet bundles are offered in order of kind; a profile's key is (kind, group)."""
    key = item[0]
    return (key[0], key[1]) if isinstance(key, tuple) else (key, "")


class Backoffice:
    """What a session needs beyond record storage: the acquirer, config bundles per terminal, heartbeats.
    All of it kept in the Store (host_sim/backend/store.py)."""

    def __init__(self, store, acquirer_=None, bundles=None, opener=None):
        self.store = store
        # An Acquirer (rules, in process) or a link (host_sim/backend/acquirer_link.py); None: no authorisation.
        self.link = None if acquirer_ is None else acquirer.link_for(acquirer_)
        self.opener = opener  # opens sealed card data (sealing.opener); None: the development key
        self.bundles = bundles  # directory of signed fleet bundles (*.zfb, `python -m host_sim bundle make`)
        self._newest = None  # (directory mtime, {kind: (version, bytes)}) of that directory
        self.deny_changes = 0  # bumped when a pass declined something: sessions offer the new deny list
        self._wake = threading.Event()
        self.online = None if acquirer_ is None else self._online(acquirer_)  # payment codes (online.py)

    def _online(self, acquirer_):
        """The OnlineAuthoriser over the same acquirer: one TCP connection per worker thread, or the
        in-process acquirer host."""
        from host_sim.backend import acquirer_link, online

        if isinstance(acquirer_, acquirer_link.TcpLink):
            address = "%s:%d" % acquirer_.address
            return online.OnlineAuthoriser(self.store, lambda: acquirer_link.TcpLink(address, online.LATE_S))
        lk = self.link
        return online.OnlineAuthoriser(self.store, lambda: lk)

    def authorise(self, recs):
        """A frame's records were stored: wake the authorisation worker.  Nothing is decided here: this
        runs inside the transaction that stores them, and the acquirer may be far away or down."""
        if self.link is not None and any(r["decision"] == record.ACCEPTED for r in recs):
            self._wake.set()

    def authorise_pending(self):
        """One authorisation pass over every pending record (acquirer.run_pass); returns its Pass."""
        result = acquirer.run_pass(self.store, self.link, self.opener)
        if result.declined:
            self.deny_changes += 1
        if result.approved or result.declined:
            log.info("acquirer: %d approved, %d declined; deny list at version %d", result.approved,
                     result.declined, self.store.deny_list_version())
        return result

    def run_authorisations(self, stop, interval=1.0, max_backoff=30.0):
        """The authorisation worker (a thread): a pass whenever records were stored (or every `interval`
        seconds), backing off while the acquirer is unavailable; one last pass once `stop` is set."""
        delay = 0.0
        while not stop.is_set():
            self._wake.clear()
            result = self.authorise_pending()
            if result.error:
                delay = min(max_backoff, delay * 2 or 0.5)
                log.warning("acquirer unavailable: %s; transactions stay pending, next try in %.1f s",
                            result.error, delay)
                stop.wait(delay)
            else:
                delay = 0.0
                self._wake.wait(interval)
        self.authorise_pending()
        self.link.close()
        if self.online is not None:
            self.online.close()  # reversals under way finish first

    def deny_delta(self, terminal):
        """(base, version, added, removed) the terminal still needs, at most one bundle's worth
        (bundle.BUNDLE_TOKENS; the next bundle continues from its version until the terminal is current);
        None if current.  A token listed and then removed (or the reverse) travels once, as its newest change."""
        base = self.store.delivered_version(terminal, bundle.KIND_DENY)
        rows = self.store.deny_changes_since(base, bundle.BUNDLE_TOKENS)
        if not rows:
            return None
        return base, rows[-1][1], [t for t, _, listed in rows if listed], [t for t, _, listed in rows if not listed]

    def token_key_bundle(self, terminal):
        """(kind 4, version, bundle sealed to this terminal) when it lacks the current fleet token key and
        did not refuse that version; None otherwise (protocol/tokenkey.py)."""
        version, key = self.store.token_key()
        kind = fleet.KIND_TOKEN_KEY
        if self.store.delivered_version(terminal, kind) >= version or \
                self.store.config_refused(terminal, kind, version):
            return None
        return kind, version, tokenkey.make(self.store.device_key(terminal), version, key, os.urandom(12))

    def fleet_bundle(self, terminal):
        """(kind, version, bytes) of the newest fleet bundle of a kind the terminal lacks and did not
        refuse; None if current.  A profile (kind 6) is the newest one addressed to the terminal's group
        (Store.terminal_group: what `provision --group` registered); a terminal of no group gets none.  The
        directory is read again whenever its modification time changed (a bundle file was added, renamed
        or removed), so a new bundle reaches the next offer without a scan per uploaded frame."""
        if self.bundles is None:
            return None
        from host_sim.tools import bundle as fleet_bundles

        changed = os.stat(self.bundles).st_mtime_ns
        if self._newest is None or self._newest[0] != changed:
            self._newest = (changed, fleet_bundles.newest(self.bundles))
        group = self.store.terminal_group(terminal)
        for key, (version, data) in sorted(self._newest[1].items(), key=_kind_order):
            kind = key
            if isinstance(key, tuple):  # a profile: only the newest one of the terminal's own group
                if key[1] != group:
                    continue
                kind = key[0]
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
