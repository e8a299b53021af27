/**
 * Default ports of alloy's servers: one family, each its own, none shared with common
 * tools (wrangler's 8787, 3000, 8080). `0` on the command line picks a free one.
 */
export const DEFAULT_PORTS = {
  /** `alloy dev`: the local runtime. */
  dev: 4000,
  /** `alloy listen`: the stream receiver (the scaffold's ACME_STREAM_URL when unset). */
  listen: 4100,
  /** `alloy serve`. */
  serve: 4200,
  /** `alloy relay`. */
  relay: 4300,
} as const;
