/**
 * The method's pipeline, registered for the CLIs: frames → invert → features → kmeans/cbr → knn → modulate →
 * labels → evaluate (one instance per clip, evaluate per row).
 * @module
 */
import { registerStages } from "../dag/registry.ts";
import { cbrStage, kmeansStage, knnStage } from "../seg/stages.ts";
import { evaluateStage } from "../metrics/evaluate.ts";
import { framesStage } from "./frames.ts";
import { invertStage } from "./invert.ts";
import { featuresStage } from "./features.ts";
import { modulateStage } from "./modulate.ts";
import { labelsStage } from "./labels.ts";

/** Every stage of the method, in data-flow order. */
export const STAGES = [
  framesStage,
  invertStage,
  featuresStage,
  kmeansStage,
  cbrStage,
  knnStage,
  modulateStage,
  labelsStage,
  evaluateStage,
];

registerStages(...STAGES);
