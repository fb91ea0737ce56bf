import { randomUUID } from 'node:crypto';
import type { EmuClock } from './clock';
import type { Pusher } from './push';

/** An Event Grid event in the Event Grid schema (what system topics emit). */
export interface EgEvent {
  id: string;
  topic: string;
  subject: string;
  eventType: string;
  eventTime: string;
  data: unknown;
  dataVersion: string;
  metadataVersion: '1';
}

/** An event subscription: where a topic's events go, and which of them. */
export interface EventSubscription {
  name: string;
  /** Topic id prefix this subscription listens to (a system topic's source, or a partner topic name); `*` for all. */
  topic: string;
  /** Where to POST: e.g. `http://127.0.0.1:7071/runtime/webhooks/eventgrid?functionName=resourceEvents`. */
  endpoint: string;
  schema: 'EventGridSchema' | 'CloudEventSchemaV1_0';
  /** Only these event types (case-insensitive); all when empty. */
  includedEventTypes?: string[];
  /** Only subjects that start with this (case-insensitive). */
  subjectBeginsWith?: string;
  /** Only subjects that end with this. */
  subjectEndsWith?: string;
}

/**
 * The emulator's Event Grid: system topics (ARM resource groups, Key Vaults) and partner topics
 * (Graph) publish here; each matching subscription receives the event as Azure delivers it to an
 * Azure Functions Event Grid trigger (Core Tools style URL, `aeg-event-type: Notification`).
 */
export class EventBus {
  private subs = new Map<string, EventSubscription>();
  /** Every event published, matched or not. */
  readonly published: EgEvent[] = [];

  constructor(
    private readonly pusher: Pusher,
    private readonly clock: EmuClock,
  ) {}

  subscribe(sub: EventSubscription): void {
    this.subs.set(sub.name, sub);
  }

  unsubscribe(name: string): void {
    this.subs.delete(name);
  }

  list(): EventSubscription[] {
    return [...this.subs.values()];
  }

  /** Builds an event with defaults (id, time, versions). */
  event(e: Pick<EgEvent, 'topic' | 'subject' | 'eventType' | 'data'> & Partial<EgEvent>): EgEvent {
    return {
      id: e.id ?? randomUUID(),
      topic: e.topic,
      subject: e.subject,
      eventType: e.eventType,
      eventTime: e.eventTime ?? this.clock.nowDate().toISOString(),
      data: e.data,
      dataVersion: e.dataVersion ?? '1',
      metadataVersion: '1',
    };
  }

  publish(events: EgEvent[]): void {
    for (const ev of events) {
      this.published.push(ev);
      for (const sub of this.subs.values()) {
        if (!matches(sub, ev)) continue;
        this.pusher.push(toDelivery(sub, ev));
      }
    }
  }
}

function matches(sub: EventSubscription, ev: EgEvent): boolean {
  if (sub.topic !== '*' && !ev.topic.toLowerCase().startsWith(sub.topic.toLowerCase())) return false;
  if (sub.includedEventTypes?.length && !sub.includedEventTypes.some((t) => t.toLowerCase() === ev.eventType.toLowerCase())) return false;
  if (sub.subjectBeginsWith && !ev.subject.toLowerCase().startsWith(sub.subjectBeginsWith.toLowerCase())) return false;
  if (sub.subjectEndsWith && !ev.subject.toLowerCase().endsWith(sub.subjectEndsWith.toLowerCase())) return false;
  return true;
}

/** Converts an Event Grid schema event to CloudEvents 1.0 as Event Grid does for CloudEvent subscriptions. */
export function toCloudEvent(ev: EgEvent): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: ev.id,
    source: ev.topic,
    subject: ev.subject,
    type: ev.eventType,
    time: ev.eventTime,
    datacontenttype: 'application/json',
    data: ev.data,
  };
}

function toDelivery(sub: EventSubscription, ev: EgEvent) {
  const cloud = sub.schema === 'CloudEventSchemaV1_0';
  return {
    kind: `eventgrid.${ev.eventType}`,
    url: sub.endpoint,
    headers: {
      'Content-Type': cloud ? 'application/cloudevents+json; charset=utf-8' : 'application/json; charset=utf-8',
      'aeg-event-type': 'Notification',
      'aeg-subscription-name': sub.name.toUpperCase(),
      'aeg-delivery-count': '0',
      'aeg-data-version': ev.dataVersion,
      'aeg-metadata-version': '1',
    },
    body: JSON.stringify(cloud ? toCloudEvent(ev) : [ev]),
  };
}
