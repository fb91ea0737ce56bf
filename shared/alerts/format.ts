/**
 * Pure builders of what each sink receives for one finding: a CloudEvent 1.0 (Event Grid topic), a
 * Teams/Workflows Adaptive Card message, a Slack incoming-webhook message, and a Graph `sendMail` body.
 * Every builder takes an already redacted finding (the alerter redacts before it formats), so no
 * secret can reach a sink through them.
 */
import type { Finding, Severity } from '../capability';

/** CloudEvents `source` of every Warden alert (SPEC §5). */
export const ALERT_SOURCE = '/warden';

/** The alert payload: CloudEvent `data` (SPEC §5). */
export interface AlertData {
  severity: Severity;
  summary: string;
  details: Record<string, unknown>;
  actions: string[];
}

/** A CloudEvent 1.0 in its JSON format (structured mode). */
export interface AlertCloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: AlertData;
}

export interface AlertMeta {
  /** CloudEvent id: unique per distinct alert (the alerter derives it from fingerprint and time). */
  id: string;
  time: Date;
}

/** The finding as a CloudEvent 1.0 (`type` `Warden.<Capability>.<Finding>`, `source` `/warden`). */
export function toCloudEvent(finding: Finding, meta: AlertMeta): AlertCloudEvent {
  return {
    specversion: '1.0',
    id: meta.id,
    source: ALERT_SOURCE,
    type: finding.type,
    subject: finding.subject,
    time: meta.time.toISOString(),
    datacontenttype: 'application/json',
    data: { severity: finding.severity, summary: finding.summary, details: finding.details, actions: finding.actions },
  };
}

const MAX_FACT_TEXT = 500;
const MAX_FACTS = 20;

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** One line per top-level detail, for people; nested values as compact JSON. */
export function detailFacts(details: Record<string, unknown>): Array<{ title: string; value: string }> {
  const facts: Array<{ title: string; value: string }> = [];
  for (const [k, v] of Object.entries(details)) {
    if (v === undefined) continue;
    const value = typeof v === 'string' ? v : JSON.stringify(v);
    facts.push({ title: k, value: truncate(value, MAX_FACT_TEXT) });
    if (facts.length === MAX_FACTS) break;
  }
  return facts;
}

const SEVERITY_LABEL: Record<Severity, string> = { info: 'Info', warning: 'Warning', critical: 'Critical' };
/** Adaptive Card text colours: `attention` is red, `warning` amber, `accent` blue. */
const CARD_COLOR: Record<Severity, string> = { critical: 'attention', warning: 'warning', info: 'accent' };

/** `Critical · Warden.Compute.IdentityMissing` */
export function alertTitle(finding: Finding): string {
  return `${SEVERITY_LABEL[finding.severity]} · ${finding.type}`;
}

/**
 * A Teams Workflows ("Post to a channel when a webhook request is received") message holding one
 * Adaptive Card with the summary, subject and severity. Teams accepts any body with 202 and fails
 * later, so this shape is what the tests check (`adaptiveCardMessageProblems`).
 */
export function toAdaptiveCardMessage(finding: Finding, meta: AlertMeta): Record<string, unknown> {
  const body: Array<Record<string, unknown>> = [
    { type: 'TextBlock', text: alertTitle(finding), weight: 'Bolder', size: 'Medium', color: CARD_COLOR[finding.severity], wrap: true },
    { type: 'TextBlock', text: finding.summary, wrap: true },
    {
      type: 'FactSet',
      facts: [
        { title: 'Severity', value: SEVERITY_LABEL[finding.severity] },
        { title: 'Subject', value: finding.subject },
        { title: 'Type', value: finding.type },
        { title: 'Time', value: meta.time.toISOString() },
      ],
    },
  ];
  const facts = detailFacts(finding.details);
  if (facts.length > 0) {
    body.push({ type: 'TextBlock', text: 'Details', weight: 'Bolder', spacing: 'Medium', wrap: true });
    body.push({ type: 'FactSet', facts });
  }
  if (finding.actions.length > 0) {
    body.push({ type: 'TextBlock', text: 'Actions', weight: 'Bolder', spacing: 'Medium', wrap: true });
    body.push({ type: 'TextBlock', text: finding.actions.map((a) => `- ${a}`).join('\n'), wrap: true });
  }
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          msteams: { width: 'Full' },
          body,
        },
      },
    ],
  };
}

/** Slack mrkdwn needs `&`, `<` and `>` escaped; everything else is literal. */
function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A Slack incoming-webhook message (`text` as the notification fallback, Block Kit `blocks` for the
 * layout). Slack's limits: section text 3000 characters, at most 10 fields of 2000 each.
 */
export function toSlackMessage(finding: Finding, meta: AlertMeta): Record<string, unknown> {
  const text = `${alertTitle(finding)}: ${finding.summary}`;
  const blocks: Array<Record<string, unknown>> = [
    { type: 'header', text: { type: 'plain_text', text: truncate(alertTitle(finding), 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: truncate(slackEscape(finding.summary), 3000) } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Severity*\n${SEVERITY_LABEL[finding.severity]}` },
        { type: 'mrkdwn', text: `*Subject*\n${truncate(slackEscape(finding.subject), 1900)}` },
      ],
    },
  ];
  const facts = detailFacts(finding.details).slice(0, 10);
  if (facts.length > 0) {
    blocks.push({ type: 'section', fields: facts.map((f) => ({ type: 'mrkdwn', text: truncate(`*${slackEscape(f.title)}*\n${slackEscape(f.value)}`, 2000) })) });
  }
  if (finding.actions.length > 0) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(finding.actions.map((a) => `• ${slackEscape(a)}`).join('\n'), 3000) } });
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `${slackEscape(finding.type)} · ${meta.time.toISOString()}` }] });
  return { text: truncate(text, 3000), blocks };
}

/** The body of `POST /users/{from}/sendMail` (AZURE-API-FACTS §3.6). */
export interface SendMailBody {
  message: {
    subject: string;
    body: { contentType: 'Text'; content: string };
    toRecipients: Array<{ emailAddress: { address: string } }>;
    importance: 'low' | 'normal' | 'high';
  };
  saveToSentItems: boolean;
}

const IMPORTANCE: Record<Severity, SendMailBody['message']['importance']> = { critical: 'high', warning: 'normal', info: 'low' };

/**
 * A plain-text mail for one finding. Text, not HTML: nothing in a finding can turn into markup or a
 * link the sender did not mean.
 */
export function toMail(finding: Finding, meta: AlertMeta, to: readonly string[]): SendMailBody {
  const lines = [
    finding.summary,
    '',
    `Severity: ${SEVERITY_LABEL[finding.severity]}`,
    `Subject:  ${finding.subject}`,
    `Type:     ${finding.type}`,
    `Time:     ${meta.time.toISOString()}`,
  ];
  const facts = detailFacts(finding.details);
  if (facts.length > 0) lines.push('', 'Details:', ...facts.map((f) => `  ${f.title}: ${f.value}`));
  if (finding.actions.length > 0) lines.push('', 'Actions:', ...finding.actions.map((a) => `  - ${a}`));
  lines.push('', `Sent by Warden (alert ${meta.id}).`);
  return {
    message: {
      subject: truncate(`[Warden] ${SEVERITY_LABEL[finding.severity]}: ${finding.summary.replace(/\s+/g, ' ')}`, 255),
      body: { contentType: 'Text', content: lines.join('\n') },
      toRecipients: to.map((address) => ({ emailAddress: { address } })),
      importance: IMPORTANCE[finding.severity],
    },
    saveToSentItems: false,
  };
}
