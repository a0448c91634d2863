/** Generated bad inputs of a frame folder (see mutations.ts; the video mutants run in tests/system). */
import { checkMutants } from "./mutations.ts";

Deno.test({
  name: "mutations: every mutant of a frame folder gives a complete output or one error line and no change",
  sanitizeResources: false,
  fn: () => checkMutants("frames"),
});
