/** Locations for tests: the repo root, the shipped data and the test fixtures (all inside the repo). */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/**
 * Reference vectors and small models the tests read (`tests/fixtures/`, provenance in each folder's README).
 * `VIDSEG_FIXTURES=DIR` points the tests at another folder of the same layout, e.g. a conformance set made
 * with other seeds and shapes by tools/derive_conformance_set.py (see tests/fixtures/README.md).
 */
export const FIXTURES = Deno.env.get("VIDSEG_FIXTURES") || path.join(ROOT, "tests", "fixtures");
/** The data the repo ships (`data/`: CamVid clips, the swan clip, the embedded model). */
export const DATA = path.join(ROOT, "data");
