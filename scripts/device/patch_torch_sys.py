#!/usr/bin/env python3
"""Make a copy of torch-sys 0.26 compile against libtorch 2.11's headers.

tch 0.26 targets libtorch 2.13; its generated C++ wrapper (libtch/torch_api_generated.cpp)
calls 15 ATen functions that 2.11 lacks or declares with another arity. This rewrites exactly
those 15 wrappers so their bodies throw "not available in libtorch 2.11" (PROTECT turns the
exception into a tch error); imd calls none of them. Every other line stays as it is.

    python3 patch_torch_sys.py TORCH_SYS_COPY_DIR
"""

import re
import sys
from pathlib import Path

WRAPPERS = [
    # Philox key/sampling ops (new in 2.12/2.13).
    "atg__philox_key_fold_in",
    "atg__philox_key_split",
    "atg__philox_normal",
    "atg__philox_normal_",
    "atg__philox_normal_out",
    "atg__philox_uniform",
    "atg__philox_uniform_",
    "atg__philox_uniform_out",
    # Lanczos anti-aliased upsampling (new).
    "atg__upsample_lanczos2d_aa",
    "atg__upsample_lanczos2d_aa_backward",
    "atg__upsample_lanczos2d_aa_backward_grad_input",
    "atg__upsample_lanczos2d_aa_out",
    "atg__upsample_lanczos2d_aa_vec",
    # New flash-attention entry point.
    "atg__flash_attention_forward_no_dropout_inplace",
    # Arity changed (enable_gqa) between 2.11 and 2.13.
    "atg__scaled_dot_product_attention_math_for_mps",
]


def main() -> int:
    root = Path(sys.argv[1])
    path = root / "libtch" / "torch_api_generated.cpp"
    lines = path.read_text().splitlines(keepends=True)
    out, patched, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\S+ (atg_\w+)\(.*\) \{$", line.rstrip("\n"))
        if m and m.group(1) in WRAPPERS:
            name = m.group(1)
            # The body: "  PROTECT(" ... "  )" then "}" (the generator's fixed layout).
            end = i + 1
            while lines[end].rstrip("\n") != "}":
                end += 1
            body = "".join(lines[i + 1 : end])
            if not body.lstrip().startswith("PROTECT("):
                raise SystemExit(f"{name}: unexpected body layout:\n{body}")
            op = name[len("atg_"):]
            out.append(line)
            out.append("  PROTECT(\n")
            out.append(f'    throw std::runtime_error("{op}: not available in libtorch 2.11 '
                       f'(imd device build, scripts/device/patch_torch_sys.py)");\n')
            out.append("  )\n")
            out.append("}\n")
            patched.append(name)
            i = end + 1
            continue
        out.append(line)
        i += 1
    missing = sorted(set(WRAPPERS) - set(patched))
    if missing or len(patched) != len(WRAPPERS):
        raise SystemExit(f"patched {len(patched)} of {len(WRAPPERS)} wrappers; missing {missing}")
    path.write_text("".join(out))
    print(f"patched {len(patched)} wrappers in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
