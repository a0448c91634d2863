import { assertEquals } from "../assert.ts";
import { assignClusters } from "../../pipeline/seg/assign.ts";

Deno.test("clusters take their majority GT value; ties go to the smallest value; clusters may merge", () => {
  // cluster 4 covers GT [3, 3, 7] → 3 (2 votes vs 1)
  // cluster 9 covers GT [255, 7, 7, 255] → tie 2–2 between 7 and 255 → 7 (smallest)
  // cluster 1 covers GT [7] → 7: clusters 9 and 1 merge into class 7
  const clusters = [4, 4, 4, 9, 9, 9, 9, 1];
  const gt = [3, 3, 7, 255, 7, 7, 255, 7];
  const a = assignClusters(clusters, gt);
  assertEquals(Array.from(a.refLabels), [3, 3, 3, 7, 7, 7, 7, 7]);
  assertEquals(a.labels, [3, 7]); // sorted unique of the assigned map (255 lost every vote, so it is no label)
  assertEquals([...a.clusterLabel.entries()].sort((x, y) => x[0] - y[0]), [[1, 7], [4, 3], [9, 7]]);
});

Deno.test("a cluster can be assigned a void/others GT value (used raw)", () => {
  // cluster 0 covers GT [0, 0, 5] → 0 ("others" in VSPW): it becomes a label like any other
  const a = assignClusters([0, 0, 0, 2], [0, 0, 5, 5]);
  assertEquals(Array.from(a.refLabels), [0, 0, 0, 5]);
  assertEquals(a.labels, [0, 5]);
});

Deno.test("single-video mode keeps the cluster ids as labels", () => {
  const a = assignClusters([5, 2, 2, 17], null);
  assertEquals(Array.from(a.refLabels), [5, 2, 2, 17]);
  assertEquals(a.labels, [2, 5, 17]);
});
