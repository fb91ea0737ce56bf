/**
 * Progress on stderr while the demo runs: a spinner with the current step and its elapsed time on a
 * terminal, one plain line per phase otherwise (CI logs, pipes). Callers clear it before writing to
 * stdout, so the two never tangle on a shared terminal.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export interface Progress {
  /** Shows what is happening now. */
  update(text: string): void;
  /** Removes the spinner line (before stdout output). */
  clear(): void;
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): Progress {
  if (!stream.isTTY) {
    let last = '';
    return {
      update(text) {
        if (text !== last) stream.write(`… ${text}\n`);
        last = text;
      },
      clear() {},
      stop() {},
    };
  }
  let text = '';
  let since = now();
  let frame = 0;
  let shown = false;
  const render = (): void => {
    if (!text) return;
    const secs = ((now() - since) / 1000).toFixed(1);
    const width = Math.max(20, (stream.columns || 80) - 1);
    const line = `${FRAMES[frame % FRAMES.length] ?? '-'} ${text} ${secs} s`;
    stream.write(`\r\x1b[2K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
    shown = true;
    frame++;
  };
  const timer = setInterval(render, 80);
  timer.unref();
  const clear = (): void => {
    if (shown) stream.write('\r\x1b[2K');
    shown = false;
  };
  return {
    update(next) {
      text = next;
      since = now();
      render();
    },
    clear,
    stop() {
      clearInterval(timer);
      clear();
      text = '';
    },
  };
}
