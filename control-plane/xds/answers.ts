// Where a stream stands with the config it was last handed, from its per-type bookkeeping (type-state.ts):
// every response answered and none rejected (`programmed`), a response still awaiting its ACK or NACK or
// held back for backpressure (`pending`), or the latest response of some type NACKed (`rejected`, with the
// type and the client's message). Read by convergence (convergence.ts) and the Programmed status
// (programmed.ts); both see streams only through this.
import type { TypeStatus } from './type-state.js';

/** What answers() reads of a stream (XdsStream.answerView()). */
export interface AnswerView {
  readonly deferredTypes: readonly string[];
  readonly types: readonly Pick<TypeStatus, 'type' | 'sentNonce' | 'answeredNonce' | 'lastNack'>[];
}

export type AnswerState =
  | { readonly state: 'programmed' }
  | { readonly state: 'pending' }
  | { readonly state: 'rejected'; readonly type: string; readonly message: string; readonly at: string };

/** A stream that can say what it sent and what its client answered (XdsStream). */
export interface Answering {
  answerView(): AnswerView;
  /**
   * Whether answers(answerView()) is `pending`, read without building the view: convergence asks it of
   * every stream a push reaches, at the push, at the end of the cycle and at each answer.
   */
  awaitsAnswer(): boolean;
}

/** The answer bookkeeping of one type, as answers() and awaitsAnswer() read it. */
export type TypeAnswers = Pick<TypeStatus, 'sentNonce' | 'answeredNonce' | 'lastNack'>;

/** Whether the latest response of the type was NACKed. */
function rejectedType(t: TypeAnswers): boolean {
  return t.sentNonce !== '' && t.lastNack !== undefined && t.lastNack.nonce === t.sentNonce;
}

/** answers(view).state === 'pending' for a view with these types, `deferred` when it defers any type. */
export function awaitsAnswer(deferred: boolean, types: Iterable<TypeAnswers>): boolean {
  let pending = deferred;
  for (const t of types) {
    if (t.sentNonce === '') continue;
    if (rejectedType(t)) return false;
    if (t.answeredNonce !== t.sentNonce) pending = true;
  }
  return pending;
}

export function isAnswering(value: unknown): value is Answering {
  const v = value as Partial<Answering> | undefined;
  return typeof v?.answerView === 'function' && typeof v.awaitsAnswer === 'function';
}

/**
 * The stream's state for its current config. A type whose latest response was NACKed makes it `rejected`
 * (the earliest such NACK when several types were); otherwise any unanswered or deferred response makes it
 * `pending`.
 */
export function answers(view: AnswerView): AnswerState {
  let rejected: { type: string; message: string; at: string } | undefined;
  for (const t of view.types) {
    const nack = t.lastNack;
    if (!nack || !rejectedType(t) || (rejected && nack.at >= rejected.at)) continue;
    rejected = { type: t.type, message: nack.message, at: nack.at };
  }
  if (rejected) return { state: 'rejected', ...rejected };
  return awaitsAnswer(view.deferredTypes.length > 0, view.types) ? { state: 'pending' } : { state: 'programmed' };
}
