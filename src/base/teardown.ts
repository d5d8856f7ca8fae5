/**
 * A stack of teardown steps for the composition root: each part registers its own release right
 * after it is created, and one unwind runs the steps in reverse order of registration (the part
 * created last is released first), awaiting each. Start-up failure and shutdown unwind the same
 * stack, so the two paths cannot drift apart. The shape of `AsyncDisposableStack.defer` from the
 * TC39 explicit resource management proposal (https://github.com/tc39/proposal-explicit-resource-management),
 * which Node 20 does not have.
 */
export class TeardownStack {
  readonly #steps: { readonly name: string; readonly run: () => void | Promise<void> }[] = [];

  /** @param onError told about a step that threw or rejected (by name); the unwind goes on. */
  constructor(private readonly onError: (step: string, err: unknown) => void) {}

  /** Registers `run` (named `name` in error reports) to run at the next {@link unwind}. */
  defer(name: string, run: () => void | Promise<void>): void {
    this.#steps.push({ name, run });
  }

  /** Runs every registered step once, last registered first; never rejects. Steps registered meanwhile run too. */
  async unwind(): Promise<void> {
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      try {
        await step.run();
      } catch (err) {
        this.onError(step.name, err);
      }
    }
  }
}
