# Copyright (c) monai_afloc contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""
The bundle's weights, both ways (the functions are :mod:`monai_afloc.checkpoint`'s)::

    # a monai_afloc checkpoint folder or the AFLoc release .ckpt -> models/model.pt (plain state dict of network_def)
    python scripts/convert.py to-bundle models/best models/model.pt
    python scripts/convert.py to-bundle models/afloc_release.ckpt models/model.pt --text-model models/Bio_ClinicalBERT

    # models/model.pt -> a monai_afloc checkpoint folder (records the architecture and inference settings), with the
    # bundle keys that describe network_def (the same KEY=VALUE as `monai.bundle run --KEY VALUE`)
    python scripts/convert.py from-bundle models/model.pt /tmp/afloc_ckpt --override text_model=/models/tiny_bert

``to-bundle`` prints the architecture the bundle keys must describe for those weights (a state dict records none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE_ROOT = os.path.dirname(_HERE)


def to_bundle(checkpoint: str, out: str, text_model: str | None = None) -> dict:
    """Write ``checkpoint`` as the plain state dict ``out``; returns the architecture the bundle keys must give."""
    from monai_afloc.checkpoint import checkpoint_to_bundle_state_dict

    return checkpoint_to_bundle_state_dict(checkpoint, out, text_model_name_or_path=text_model)


def from_bundle(model_pt: str, directory: str, overrides: dict | None = None,
                config_file: str | None = None, overwrite: bool = False) -> str:
    """Load ``model_pt`` into the ``network_def`` of ``config_file`` (default: configs/inference.json, with
    ``overrides``) and save it as a monai_afloc checkpoint folder."""
    from monai.bundle import ConfigParser

    from monai_afloc.checkpoint import bundle_state_dict_to_checkpoint

    parser = ConfigParser()
    parser.read_config(config_file or os.path.join(BUNDLE_ROOT, "configs", "inference.json"))
    parser.update({"bundle_root": BUNDLE_ROOT, **(overrides or {})})
    network = parser.get_parsed_content("network_def")
    return bundle_state_dict_to_checkpoint(model_pt, network, directory, overwrite=overwrite)


def main(argv: Sequence[str] | None = None) -> int:
    from monai_afloc.cli import parse_overrides

    parser = argparse.ArgumentParser(description="Convert the bundle's weights (models/model.pt) both ways.")
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("to-bundle", help="checkpoint folder or release .ckpt -> models/model.pt")
    a.add_argument("checkpoint")
    a.add_argument("out")
    a.add_argument("--text-model", default=None, help="the release's text model folder (e.g. Bio_ClinicalBERT)")
    b = sub.add_parser("from-bundle", help="models/model.pt -> a monai_afloc checkpoint folder")
    b.add_argument("model_pt")
    b.add_argument("directory")
    b.add_argument("--config-file", default=None)
    b.add_argument("--override", action="append", default=[], metavar="KEY=VALUE")
    b.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "to-bundle":
            arch = to_bundle(args.checkpoint, args.out, args.text_model)
            print(f"wrote {args.out}; network_def must describe: {json.dumps(arch, sort_keys=True)}")
        else:
            out = from_bundle(args.model_pt, args.directory, parse_overrides(args.override), args.config_file,
                              args.overwrite)
            print(f"wrote {out}")
    except (FileNotFoundError, TypeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
