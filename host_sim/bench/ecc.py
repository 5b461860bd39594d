"""`python -m host_sim bench ecc --json`: what an elliptic-curve signature costs the terminal.

Runs host_sim/device/bench_ecc.py in the MicroPython unix port (the virtual board's VM and heap) over
protocol/ecc.py, protocol/sm3.py and protocol/rsa.py, all in one run:
- sm2_verify / p256_verify: a key given as bytes (its 8 odd multiples built per verify), the published
  examples (GM/T 0003.5 Annex A, RFC 6979 A.2.5 "sample");
- sm2_verify_fixed_key / p256_verify_fixed_key: the same with a key from ecc.prepare_key();
- rsa2048_verify: protocol/rsa.verify (e = 65537) of a signature made here with `cryptography`;
- sm3_64_bytes: one SM3 of 64 bytes.
Derived: ratio_sm2_to_rsa (goal <= 15), and ride_code_chain_us: root -> issuer certificate and issuer
-> user certificate with prepared keys plus the user's code signature with a key from the certificate,
sum of SM2 medians; ride_code_chain_esp32_ms projects it to an ESP32-S3 at 240 MHz with ESP32_FACTOR.
ride_code_issuer_cached_*: the same once the root -> issuer check is remembered per issuer certificate
(one prepared-key verify and the code's verify per code).
Every timing also has min_us, and the *_min keys use it: on a loaded machine the median of a 5 ms
operation is inflated by preemption far more than that of a 1 ms one.
"""

import os
import tempfile

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from host_sim import micropython
from host_sim.tools import tickets

# GM/T 0003.5-2012 Annex A (recommended curve, default id) and RFC 6979 A.2.5 (P-256, "sample")
SM2_KEY = ("09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020"
           "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13")
SM2_SIG = ("F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
           "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA")
P256_KEY = ("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
            "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")
P256_SIG = ("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
            "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8")

# How many times slower MicroPython runs this on an ESP32-S3 at 240 MHz than the unix port on an
# x86-64 development machine: an assumption, not a measurement (this repository has no board figure
# yet).  Basis: clock ratio alone is ~15-20x (240 MHz against 3.5-5 GHz with a wider core), and the
# ESP32 port's long ints use 16-bit digits where the x86-64 unix port uses 32-bit ones, so each
# 256-bit product costs more digit steps; 40 is taken as a cautious middle.
ESP32_FACTOR = 40
RIDE_CODE_BUDGET_MS = 300


def run(args):
    key = tickets.generate_key()
    rsa_msg = b"ride code bench: one RSA-2048 verify for scale"
    rsa_sig = key.sign(rsa_msg, padding.PKCS1v15(), hashes.SHA256())
    modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
    fields = [SM2_KEY, b"message digest".hex(), SM2_SIG, P256_KEY, b"sample".hex(), P256_SIG,
              modulus.hex(), rsa_msg.hex(), rsa_sig.hex()]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inputs")
        with open(path, "w") as f:
            f.write("\n".join(fields) + "\n")
        result = micropython.run_program("bench_ecc", [path, args.iterations], heap=args.heap)
    sm2, fixed, rsa = (result[k]["median_us"] for k in ("sm2_verify", "sm2_verify_fixed_key", "rsa2048_verify"))
    chain = 2 * fixed + sm2
    result["ratio_sm2_to_rsa"] = round(sm2 / max(1, rsa), 2)
    result["ratio_sm2_fixed_to_rsa"] = round(fixed / max(1, rsa), 2)
    result["ride_code_chain_us"] = chain
    result["ride_code_chain_esp32_ms"] = round(chain * ESP32_FACTOR / 1000, 1)
    best = [result[k]["min_us"] for k in ("sm2_verify", "sm2_verify_fixed_key", "rsa2048_verify")]
    result["ratio_sm2_to_rsa_min"] = round(best[0] / max(1, best[2]), 2)
    result["ride_code_chain_min_us"] = 2 * best[1] + best[0]
    result["ride_code_chain_esp32_ms_from_min"] = round(result["ride_code_chain_min_us"] * ESP32_FACTOR / 1000, 1)
    result["ride_code_issuer_cached_min_us"] = best[1] + best[0]
    result["ride_code_issuer_cached_esp32_ms_from_min"] = round((best[1] + best[0]) * ESP32_FACTOR / 1000, 1)
    result["esp32_factor_assumed"] = ESP32_FACTOR
    result["targets"] = {"ratio_sm2_to_rsa": 15, "ride_code_chain_esp32_ms": RIDE_CODE_BUDGET_MS}
    return result


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=100, help="timed runs of each operation")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
