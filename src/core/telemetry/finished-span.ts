// A sampled request's span as the SDK's span processor and exporters read it (ReadableSpan), made
// once, when the request ends, from what its start decided (the ids, the parent) and its record.
// The SDK's own span (Tracer.startSpan, then updateName, setAttributes, setStatus and end) did the
// same in some 30 calls spread over the request, each validating and copying what it was given; a
// span made 1 request in 100 ran them as cold code, about half of what metrics plus 1 % tracing
// cost a gateway (docs/benchmarks.md). The fields are the SDK's, with the values it gives them:
// times from the record's Date through core's millisToHrTime, status UNSET or ERROR, no events or
// links, the provider's resource and the `meshgate` scope; the batch processor and the exporters
// are the SDK's, unchanged.

import type { Attributes, HrTime, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/** What a sampled request's start fixed: its context, its caller's (when valid), its kind. */
export interface SpanStart {
  readonly context: SpanContext;
  readonly parent: SpanContext | undefined;
  readonly kind: SpanKind;
  readonly startTime: Date;
}

/** What the end adds, and the SDK's time helpers (core's, so the numbers are the SDK's to the nanosecond). */
export interface SpanEnd {
  readonly name: string;
  readonly attributes: Attributes;
  readonly status: SpanStatus;
  readonly durationMs: number;
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  readonly millisToHrTime: (ms: number) => HrTime;
  readonly hrTimeDuration: (start: HrTime, end: HrTime) => HrTime;
}

const NO_LINKS: never[] = [];
const NO_EVENTS: TimedEvent[] = [];

export class FinishedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly links = NO_LINKS;
  readonly events = NO_EVENTS;
  readonly ended = true;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly #context: SpanContext;

  constructor(s: SpanStart, e: SpanEnd) {
    this.#context = s.context;
    this.name = e.name;
    this.kind = s.kind;
    this.parentSpanContext = s.parent;
    const start = s.startTime.getTime();
    this.startTime = e.millisToHrTime(start);
    // The SDK's end(): a duration below zero (a record that cannot have one) is made 0.
    let end = e.millisToHrTime(start + e.durationMs);
    let duration = e.hrTimeDuration(this.startTime, end);
    if (duration[0] < 0) {
      end = [this.startTime[0], this.startTime[1]];
      duration = [0, 0];
    }
    this.endTime = end;
    this.duration = duration;
    this.status = e.status;
    this.attributes = e.attributes;
    this.resource = e.resource;
    this.instrumentationScope = e.scope;
  }

  spanContext(): SpanContext {
    return this.#context;
  }
}
