/**
 * `POST /v1.0/users/{id|upn}/sendMail` (facts §3.6): 202 with an empty body; the message lands in an
 * outbox the control exposes. Malformed messages are refused with 400 as Exchange Online does.
 */
import { z } from 'zod';
import type { EmuClock } from '../core/clock';
import type { Router } from '../core/router';
import { badRequest, graphError, noContent, notFound } from './odata';
import { wrap } from './paging';
import type { Directory } from './state';

const recipient = z.object({
  emailAddress: z.object({
    address: z.string().regex(/^[^@\s]+@[^@\s]+$/, 'not an e-mail address'),
    name: z.string().optional(),
  }),
});

const messageSchema = z.object({
  subject: z.string().optional(),
  body: z
    .object({
      contentType: z.string().refine((v) => ['text', 'html'].includes(v.toLowerCase()), 'contentType must be Text or HTML'),
      content: z.string(),
    })
    .optional(),
  toRecipients: z.array(recipient).optional(),
  ccRecipients: z.array(recipient).optional(),
  bccRecipients: z.array(recipient).optional(),
  importance: z.enum(['low', 'normal', 'high', 'Low', 'Normal', 'High']).optional(),
});

const sendMailSchema = z.object({
  message: messageSchema,
  saveToSentItems: z.union([z.boolean(), z.enum(['true', 'false'])]).optional(),
});

export type MailMessage = z.infer<typeof messageSchema>;

export interface SentMail {
  /** The sender's user principal name. */
  from: string;
  message: MailMessage;
  saveToSentItems: boolean;
  time: number;
}

export function addMailRoute(router: Router, dir: Directory, clock: EmuClock, outbox: SentMail[]): void {
  router.add(
    'POST',
    '/v1.0/users/:id/sendMail',
    'graph.sendMail',
    wrap((req) => {
      const user = dir.user(req.params.id ?? '');
      if (!user) return notFound(req, req.params.id ?? '');
      if (!user.mail) {
        return graphError(req, 404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.');
      }
      if (req.body === undefined) throw badRequest('Empty Payload. JSON content expected.', 'ErrorInvalidRequest');
      const parsed = sendMailSchema.safeParse(req.body);
      if (!parsed.success) {
        throw badRequest(`Invalid message: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, 'ErrorInvalidRequest');
      }
      const m = parsed.data.message;
      if ((m.toRecipients?.length ?? 0) + (m.ccRecipients?.length ?? 0) + (m.bccRecipients?.length ?? 0) === 0) {
        throw badRequest('At least one recipient is not valid., A message can\'t be sent because it contains no recipients.', 'ErrorInvalidRecipients');
      }
      outbox.push({
        from: user.userPrincipalName,
        message: m,
        saveToSentItems: parsed.data.saveToSentItems === undefined ? true : String(parsed.data.saveToSentItems) === 'true',
        time: clock.now(),
      });
      return noContent(req, 202);
    }),
  );
}
