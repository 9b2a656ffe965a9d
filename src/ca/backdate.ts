/**
 * notBefore is set this far in the past so that peers whose clocks run a little behind
 * accept freshly minted material (Dapr's allowedClockSkew default, 15m).
 */
export const DEFAULT_BACKDATE_MS = 15 * 60_000;
