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
Tutorial: AFLoc as a MONAI Deploy application, DICOM in, DICOM SEG + SR + PNG + JSON out, offline.

Needs the deploy environment (``.ci/deploy.sh`` builds it; see docs/deploy.md).

1. Write synthetic DX studies (non-square, 16-bit, one of them MONOCHROME1) and, to show the error handling, a CT
   study and a file that is not DICOM.
2. Get a model: ``--checkpoint`` (an AFLoc release ``.ckpt`` or a monai_afloc checkpoint folder, e.g. the demo's
   ``models/afloc``), else a small random AFLoc (ResNet-18 + the offline MiniLM, or ``--text-model``); export it
   for the app with ``export_deploy_model`` (TorchScript image encoder + the prompt vectors).
3. Run the app in-process (``run_app``; the command line is ``python sample_apps/deploy_afloc -i IN -o OUT -m MODEL``).
4. Read the outputs back: ``status.json``, the DICOM SEG (one segment per finding) and the Basic Text SR.

Run: ``python tutorials/deploy_app.py --out deploy_tutorial_out [--checkpoint demo_out/models/afloc]``.
An untrained network localizes nothing in particular: the point is the plumbing.
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np


def write_studies(folder: str, n: int = 2) -> list[str]:
    """Synthetic chest radiographs as DX DICOM (one study each) + a 2-slice CT study + a text file."""
    from monai_afloc.apps.synthetic import SyntheticCXRGenerator
    from monai_afloc.apps.synthetic.writers import write_dicom

    gen = SyntheticCXRGenerator(image_size=(320, 256), seed=3)  # (rows, cols): non-square
    paths = []
    for i in range(n):
        case = gen.generate_case(i)
        photometric = "MONOCHROME1" if i % 2 else "MONOCHROME2"
        paths.append(write_dicom(os.path.join(folder, f"study_{i}", "cxr.dcm"), case["image"], bits_stored=12,
                                 photometric_interpretation=photometric, pixel_spacing=case["pixel_spacing"]))
        print(f"study {i}: {photometric}, findings {[f['name'] for f in case['findings']] or 'none'}")
    import pydicom
    from pydicom.uid import generate_uid

    study, series = generate_uid(), generate_uid()
    for z in range(2):  # a CT study: reported as "no CR/DX series", never processed
        p = write_dicom(os.path.join(folder, "ct", f"ct_{z}.dcm"), np.full((64, 64), 90, np.uint8))
        ds = pydicom.dcmread(p)
        ds.Modality, ds.SOPClassUID = "CT", "1.2.840.10008.5.1.4.1.1.2"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, float(z)], [1.0, 0, 0, 0, 1.0, 0]
        ds.save_as(p)
    with open(os.path.join(folder, "README.txt"), "w") as f:  # not DICOM: listed under rejected_files
        f.write("not a DICOM file\n")
    return paths


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="deploy_tutorial_out")
    parser.add_argument("--checkpoint", default=None, help="AFLoc release .ckpt or monai_afloc checkpoint folder")
    parser.add_argument("--text-model", default=None, help="a local Hugging Face model folder (default: MiniLM)")
    parser.add_argument("--studies", type=int, default=2)
    args = parser.parse_args(argv)

    from monai_afloc.apps.deploy import export_deploy_model, load_app_config, run_app

    # 1. DICOM input
    dicom_in = os.path.join(args.out, "dicom_in")
    write_studies(dicom_in, args.studies)

    # 2. a model, exported for the app: TorchScript image encoder + the config's prompts encoded once
    config = load_app_config({"findings": ["Cardiomegaly", "Pleural effusion", "Nodule"],
                              "prompts": [{"label": "Left lower opacity", "prompt": "left lower lobe opacity"}]})
    if args.checkpoint:  # the checkpoint's own inference settings travel with the export
        from monai_afloc.checkpoint import load_afloc_for_inference

        net, settings = load_afloc_for_inference(args.checkpoint)
    else:
        from monai_afloc.inference_settings import default_inference_settings
        from monai_afloc.networks.nets import afloc_default

        net = afloc_default(args.text_model, backbone="resnet18", input_size=None)
        settings = default_inference_settings(net)
    model_dir = export_deploy_model(net.eval(), os.path.join(args.out, "model_ts"),
                                    [prompt for _, prompt in config["finding_prompts"]],
                                    input_size=settings.image_size, inference=settings)

    # 3. the app, in-process (same as: python sample_apps/deploy_afloc -i dicom_in -o app_out -m model_ts -c cfg)
    out = os.path.join(args.out, "app_out")
    report = run_app(dicom_in, out, model_dir, config={k: config[k] for k in ("findings", "prompts")})

    # 4. what came out
    print(f"\nrun status: {report['status']}  (details: {os.path.join(out, 'status.json')})")
    for uid, study in report["studies"].items():
        print(f"  study ...{uid[-12:]}: {study['status']} {'; '.join(study['messages'])}")
    for rejected in report["rejected_files"]:
        print(f"  rejected {rejected['file']}: {rejected['reason']}")
    import pydicom

    seg_files = sorted(glob.glob(os.path.join(out, "*", "*", "seg.dcm")))
    for seg_path in seg_files:
        folder = os.path.dirname(seg_path)
        seg, sr = pydicom.dcmread(seg_path), pydicom.dcmread(os.path.join(folder, "sr.dcm"))
        with open(os.path.join(folder, "result.json")) as f:
            result = json.load(f)
        print(f"\n{os.path.relpath(folder, out)}")
        print(f"  DICOM SEG {seg.Rows}x{seg.Columns}, segments: {[s.SegmentLabel for s in seg.SegmentSequence]}")
        print("  SR text:\n    " + sr.ContentSequence[0].TextValue.replace("\n", "\n    "))
        print(f"  overlays: {sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, '*.png')))}")
        print(f"  result.json findings: {[(f['label'], round(f['score'], 3)) for f in result['findings']]}")
    return {"report": report, "seg_files": seg_files, "output": out}


if __name__ == "__main__":
    main()
