/** The inputs of the plan, remediate and audit routes, validated at the edge. */
import { z } from 'zod';
import { CAPABILITIES } from '../capability';
import { AUDIT_CAPABILITIES, MAX_AUDIT_LIMIT } from '../audit/names';

export const capabilitySelector = z.enum([...CAPABILITIES, 'all'], {
  error: () => `must be one of ${[...CAPABILITIES, 'all'].join(', ')}`,
});

/** A resource id, group id or app id; each capability's `parseTarget` checks its own shapes. */
export const targetInput = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(2048, 'must be at most 2048 characters')
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

/** `GET /api/plan?capability=…&target=…` (capability defaults to all). */
export const planQuerySchema = z.object({
  capability: capabilitySelector.default('all'),
  target: targetInput.optional(),
});

/**
 * `POST /api/remediate` body. Strict: a misspelt `dryrun` must be refused, not ignored — ignoring it
 * would apply what the caller meant only to preview.
 */
export const remediateBodySchema = z.strictObject({
  capability: capabilitySelector,
  target: targetInput.optional(),
  dryRun: z.boolean().optional(),
});

/** `GET /api/audit?since=…&limit=…&capability=…&continuationToken=…`; limit above 1000 is capped. */
export const auditQuerySchema = z.object({
  since: z.iso
    .datetime({ offset: true, message: 'must be an ISO 8601 time such as 2026-01-01T00:00:00Z' })
    .transform((s) => new Date(s))
    .optional(),
  limit: z
    .string()
    .regex(/^\d{1,9}$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= 1, 'must be at least 1')
    .transform((n) => Math.min(n, MAX_AUDIT_LIMIT))
    .optional(),
  capability: z.enum(AUDIT_CAPABILITIES, { error: () => `must be one of ${AUDIT_CAPABILITIES.join(', ')}` }).optional(),
  continuationToken: z.string().max(1024).optional(),
});

/** Error codes by the field that failed. */
export const INPUT_CODES: Readonly<Record<string, string>> = {
  capability: 'UnknownCapability',
  target: 'InvalidTarget',
  dryRun: 'InvalidDryRun',
  since: 'InvalidSince',
  limit: 'InvalidLimit',
  continuationToken: 'InvalidContinuationToken',
};
