// face-api.js's own answer for the age and gender network, on the face crops the Python engine sees.
//
//   PYTHONPATH=/tmp/golden-base .venv/bin/python scripts/record_goldens.py --crops /tmp/crops
//   node scripts/faceapi_goldens.cjs /tmp/crops tests/golden/age_gender_faceapi.json
//
// The embedded recognizer runs face-api.js's AgeGenderNet outside JavaScript (first in numpy, now as
// an ONNX graph built from the same weights), so nothing but face-api.js itself can say whether it
// computes what the model's authors meant. This script installs @vladmandic/face-api 1.7.15 (the
// very npm tarball the model files are pinned from) and TensorFlow.js into a temporary folder
// (tfjs' pure-JavaScript CPU backend: tfjs-node would need a native download; the wasm backend
// package is installed only because face-api's Node bundle requires it), checks the two model files
// against the sha256 pinned in core/recognizers/local/model_files.py, and runs
// `ageGenderNet.predictAgeAndGender` on each 112x112 RGB crop (raw bytes named by their sha256, as
// record_goldens.py writes them). The output maps each crop's sha256 to {age, male_probability};
// tests/golden/test_goldens.py holds the Python engine to it. Run by hand, once per model change.
"use strict";

const { execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { createRequire } = require("node:module");

const PACKAGES = ["@vladmandic/face-api@1.7.15", "@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0"];
const PINNED = {
  "age_gender_model-weights_manifest.json": "74b60bf3ebf981bf4e661e9cca3a185614e10b25d797118b62e2a68d3ff2569f",
  "age_gender_model.bin": "49f92bbc0afef2342c4385e4a2b0acb6d7a727c6f0aa539499719a81acf9abaa",
};
const SIZE = 112;

function sha256(data) {
  return crypto.createHash("sha256").update(data).digest("hex");
}

function install() {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "faceapi-goldens-"));
  fs.writeFileSync(path.join(folder, "package.json"), '{"private": true}\n');
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", ...PACKAGES], {
    cwd: folder,
    stdio: "inherit",
  });
  return folder;
}

async function main() {
  const [crops, output] = process.argv.slice(2);
  if (!crops || !output) {
    console.error("usage: node scripts/faceapi_goldens.cjs CROPS_DIR OUTPUT.json");
    process.exit(2);
  }
  const folder = install();
  const load = createRequire(path.join(folder, "index.js"));
  const faceapi = load("@vladmandic/face-api/dist/face-api.node-wasm.js");
  const tf = faceapi.tf;
  await tf.setBackend("cpu");
  await tf.ready();

  const modelDir = path.join(folder, "node_modules", "@vladmandic", "face-api", "model");
  const files = {};
  for (const [name, pinned] of Object.entries(PINNED)) {
    files[name] = fs.readFileSync(path.join(modelDir, name));
    if (sha256(files[name]) !== pinned) throw new Error(`${name} is not the pinned file`);
  }
  const manifest = JSON.parse(files["age_gender_model-weights_manifest.json"].toString("utf8"));
  const specs = manifest.flatMap((group) => group.weights);
  const bin = files["age_gender_model.bin"];
  const buffer = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  const net = faceapi.nets.ageGenderNet;
  net.loadFromWeightMap(tf.io.decodeWeights(buffer, specs));

  const names = JSON.parse(fs.readFileSync(path.join(crops, "index.json"), "utf8"));
  const answers = {};
  for (const name of names) {
    const bytes = fs.readFileSync(path.join(crops, `${name}.rgb`));
    if (bytes.length !== SIZE * SIZE * 3 || sha256(bytes) !== name) throw new Error(`${name}: not a 112 px crop`);
    const input = tf.tensor3d(Float32Array.from(bytes), [SIZE, SIZE, 3], "float32");
    const result = await net.predictAgeAndGender(input);
    input.dispose();
    const male = result.gender === "male" ? result.genderProbability : 1 - result.genderProbability;
    answers[name] = { age: result.age, male_probability: male };
  }
  const meta = { face_api: faceapi.version, tfjs: tf.version_core, backend: tf.getBackend() };
  fs.writeFileSync(output, JSON.stringify({ produced_by: meta, crops: answers }, null, 1) + "\n");
  fs.rmSync(folder, { recursive: true, force: true });
  console.error(`${names.length} crops answered by face-api.js ${meta.face_api} (${meta.backend})`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
