"""The active fleet bundles in flash (protocol/fleet.py): fares, ticket keys, ride revocations, read
without the whole file.

A bundle is activated by renaming its verified staged file to /flash/config/fleet-<kind>.bin
(receiver.py), so a power cut leaves the old bundle or the new one.  This module reads one: at boot
(trust.py, app.py) and, through the same functions, the staged copy before activation.  Files
are read in entries of at most 259 bytes; what is kept is bounded by protocol/fleet.py's caps.
"""

from protocol import fleet, ticket

FLEET_FILE = "/config/fleet-%d.bin"  # the active fleet bundle of a kind (trust.has_fleet_bundles looks for them)
GROUP_FILE = "/config/group"  # the terminal group a profile bundle must be addressed to (`provision --group`)


def path(root, kind):
    return root + FLEET_FILE % kind


def read_head(f, size):
    """(kind, key id, body length, version, issued) of the open bundle `f` of `size` bytes."""
    return fleet.head(f.read(fleet.HEAD), size)


def read_body(f, kind, body_len, buf):
    """The fares dict, revoked ride issuers set, checked profile dict or ticket Keyring of the body `f`
    is positioned at;
    FleetError when malformed."""
    if kind == fleet.KIND_FARES:
        return fleet.fares(f.read(body_len))
    if kind == fleet.KIND_RIDE_REVOKED:
        return fleet.ride_revoked(f.read(body_len))
    if kind == fleet.KIND_PROFILE:
        return fleet.profile_body(f.read(body_len))
    counts = f.read(3)
    nk, nr, nt = fleet.ticket_counts(counts, body_len)
    ring = ticket.Keyring()
    mv = memoryview(buf)
    for i in range(nk + nr + nt):
        size = fleet.entry_size(i, nk, nr)
        if f.readinto(mv[:size]) != size:
            raise fleet.FleetError("ticket-key body truncated")
        fleet.add_entry(ring, mv[:size], i, nk, nr)
    return ring


def load(root, kind):
    """(version, fares dict or Keyring) of the active bundle of `kind`, or None when there is none.
    A damaged file is reported and ignored (the next session brings a good one)."""
    try:
        f = open(path(root, kind), "rb")
    except OSError:
        return None
    try:
        with f:
            size = f.seek(0, 2)
            f.seek(0)
            k, _, b, version, _ = read_head(f, size)
            if k != kind:
                raise fleet.FleetError("kind %d in the file of kind %d" % (k, kind))
            return version, read_body(f, kind, b, bytearray(fleet.KEY_ENTRY))
    except (fleet.FleetError, OSError) as e:
        print("fleet %s: %s" % (fleet.NAMES.get(kind, kind), e))
        return None


def version(root, kind):
    """The active version of `kind` (0: none), from the header alone."""
    try:
        with open(path(root, kind), "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            return read_head(f, size)[3]
    except (fleet.FleetError, OSError):
        return 0


def load_fares(root):
    """The active fare table ({credential kind: fen}); empty: the Decider's defaults."""
    active = load(root, fleet.KIND_FARES)
    fares = None if active is None else active[1]
    return fares if isinstance(fares, dict) else {}


def group(root):
    """The terminal group provisioning wrote (`provision --group NAME`), or None: a terminal of no group
    takes no profile bundle."""
    try:
        with open(root + GROUP_FILE) as f:
            name = f.read(64).strip()
    except OSError:
        return None
    return name or None


def check_group(root, content):
    """None when the profile `content` is addressed to this terminal's group, else the reason it is not."""
    mine = group(root)
    if mine is None:
        return "profile for group %s, this terminal has no group" % content["group"]
    if content["group"] != mine:
        return "profile for group %s, this terminal is in %s" % (content["group"], mine)
    return None


def load_profile(root):
    """The active profile (a checked dict) if it is addressed to this terminal's group, else None."""
    active = load(root, fleet.KIND_PROFILE)
    if active is None:
        return None
    version, content = active
    if not isinstance(content, dict):
        return None
    wrong = check_group(root, content)
    if wrong is not None:
        print("fleet profile: " + wrong)
        return None
    print("fleet profile: %s for %s, version %d" % (content["profile"], content["group"], version))
    return content
