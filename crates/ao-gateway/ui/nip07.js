// Signed decisions through the browser's NIP-07 signer (`window.nostr`, from an extension such
// as nos2x or Alby). The console builds the kind-39213 event, the signer signs it with a key
// the page never sees, and the gateway receives only the signed event.

/** The NIP-SA decision kind. */
export const DECISION_KIND = 39213;

/** Whether a NIP-07 signer is present. */
export function signerPresent() {
  return typeof window.nostr === 'object' && window.nostr !== null && typeof window.nostr.signEvent === 'function';
}

/**
 * The unsigned decision event on `requestId`: tags `["d", id]` and `["decision", "approved" |
 * "denied"]`, the reason as content, dated `createdAt` (Unix seconds).
 */
export function decisionEvent(requestId, approve, reason, createdAt) {
  return {
    kind: DECISION_KIND,
    created_at: createdAt,
    tags: [['d', requestId], ['decision', approve ? 'approved' : 'denied']],
    content: reason || '',
  };
}

/**
 * Asks the signer to sign an approval of `request` (an item of the pending stream). Refuses
 * before asking when the signer's key is not one of the request's approvers, and checks that
 * what comes back is the event that was asked for.
 */
export async function signApproval(request, reason, createdAt) {
  if (!signerPresent()) {
    throw new Error('this approval must be signed: no NIP-07 signer (window.nostr) is present in this browser');
  }
  const unsigned = decisionEvent(request.request_id, true, reason, createdAt);
  if (typeof window.nostr.getPublicKey === 'function') {
    const pubkey = await window.nostr.getPublicKey();
    if (request.approvers.length && !request.approvers.includes(pubkey)) {
      throw new Error(`the signer's key ${pubkey.slice(0, 12)}… is not an approver of this request`);
    }
    unsigned.pubkey = pubkey;
  }
  const signed = await window.nostr.signEvent(unsigned);
  const same = signed && signed.kind === unsigned.kind && signed.content === unsigned.content
    && signed.created_at === unsigned.created_at
    && JSON.stringify(signed.tags) === JSON.stringify(unsigned.tags)
    && typeof signed.id === 'string' && typeof signed.sig === 'string' && typeof signed.pubkey === 'string';
  if (!same) throw new Error('the signer returned an event other than the decision it was asked to sign');
  return signed;
}
