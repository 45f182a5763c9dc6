/**
 * ListOffsets v0 ("offsets before a time"): the pre-0.10.1 look-up that answers with segment
 * boundaries rather than the exact record, kept by Kafka 2.x-3.x and by this broker for old
 * clients. A pure function of the log's shape, mirroring Kafka's `legacyFetchOffsetsBefore`.
 */

export interface SegmentShape {
  baseOffset: number;
  /** When the segment was last written (Kafka: file mtime; here: its newest record's time). */
  lastModified: number;
  size: number;
}

export interface LegacyLookup {
  segments: SegmentShape[];
  logStartOffset: number;
  /** The end a consumer may see (the high watermark). */
  endOffset: number;
  now: number;
}

/**
 * Up to `maxNumOffsets` offsets, newest first: -1 (latest) starts at the end offset, -2
 * (earliest) at the log start, any other time at the newest segment written no later than it.
 */
export function legacyOffsetsBefore(log: LegacyLookup, timestamp: number, maxNumOffsets: number): number[] {
  const points = log.segments.map((s) => ({ offset: Math.max(s.baseOffset, log.logStartOffset), time: s.lastModified }));
  if (log.segments.length > 0 && (log.segments.at(-1) as SegmentShape).size > 0) points.push({ offset: log.endOffset, time: log.now });
  let start: number;
  if (timestamp === -1) start = points.length - 1;
  else if (timestamp === -2) start = 0;
  else {
    start = points.length - 1;
    while (start >= 0 && points[start].time > timestamp) start--;
  }
  const out: number[] = [];
  for (let i = start; i >= 0 && out.length < Math.max(maxNumOffsets, 0); i--) out.push(Math.min(points[i].offset, log.endOffset));
  // Equal offsets (an empty active segment at the end) collapse, as consumers expect distinct ones.
  return [...new Set(out)].sort((a, b) => b - a);
}
