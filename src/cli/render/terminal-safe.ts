/**
 * Text alloy prints for people often quotes what others wrote: webhook payloads, a store's
 * refs, error messages naming a file's contents. ECMA-48 control sequences in such text
 * would drive the reader's terminal (move the cursor over earlier lines, set the title,
 * OSC 52 writes the clipboard). Every human line goes through terminalSafe: controls other
 * than newline and tab are shown escaped (`\x1b`), except the SGR colour sequences chalk
 * itself writes.
 */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
const CONTROL_OR_SGR = /\x1b\[[0-9;]*m|[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

export function terminalSafe(text: string): string {
  if (!CONTROL.test(text)) return text;
  return text.replace(CONTROL_OR_SGR, (m) => (m.length > 1 ? m : `\\x${m.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
