/* ui-busy: the "Loading…" indicator. A request that takes longer than
 * delayMs shows it until every slow request is done; faster ones would only
 * make it flicker. start() is ApiClient's onRequest. */
import { show } from './dom.js';

export function createBusy(node, delayMs = 200) {
  let slow = 0;
  return function start() {
    let isSlow = false;
    const timer = setTimeout(() => {
      isSlow = true;
      slow++;
      show(node, true);
    }, delayMs);
    return () => {
      clearTimeout(timer);
      if (isSlow && --slow === 0) show(node, false);
    };
  };
}
