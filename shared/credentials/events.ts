/**
 * Key Vault secret events as hints for the credentials capability. `SecretNearExpiry` and
 * `SecretExpired` for a secret Warden rotates (matched by the policy's vault and secret name, checked
 * against the `appId` tag Warden writes) become a work item for the app; the reconcile decides from
 * the real state. An event about a version that has already been replaced by a newer, healthy one is
 * skipped without queueing anything, so a duplicate or late event costs one Key Vault read.
 */
import type { Trigger } from '../capability';
import { DAY_MS, type Clock } from '../clock';
import { type NormalizedEvent, parseEventGridEvent } from '../events/eventgrid';
import { type KeyVaultSecretEvent, parseKeyVaultSecretEvent } from '../events/keyvault';
import type { Logger } from '../logging';
import type { CredentialsPolicy } from '../policy';
import { latestVersion, type Secrets } from '../ports/secrets';
import type { WorkRequest } from '../work/item';
import { sameVault, TAG_APP_ID, tagValue } from './model';

export interface KeyVaultEventDeps {
  policy: Pick<CredentialsPolicy, 'rotate' | 'rotateDaysBefore'>;
  secrets: Secrets;
  clock: Clock;
  logger: Logger;
  enqueue: (items: WorkRequest[]) => Promise<void>;
}

export interface KeyVaultEventResult {
  outcome: 'enqueued' | 'skipped' | 'ignored';
  reason: string;
  appId?: string;
  event: Pick<KeyVaultSecretEvent, 'id' | 'type' | 'vaultUrl' | 'secretName' | 'version'>;
}

/**
 * Handles one Key Vault event (raw Event Grid or CloudEvents input, or already normalised).
 * Throws InputError for input that is not a Key Vault secret event (retrying cannot fix it).
 */
export async function handleKeyVaultEvent(input: unknown, deps: KeyVaultEventDeps, trigger?: Trigger): Promise<KeyVaultEventResult> {
  const normalized: NormalizedEvent = isNormalized(input) ? input : parseEventGridEvent(input);
  const ev = parseKeyVaultSecretEvent(normalized);
  const summary = { id: ev.id, type: ev.type, vaultUrl: ev.vaultUrl, secretName: ev.secretName, version: ev.version };
  const log = deps.logger.child({ eventId: ev.id, eventType: ev.type, secretName: ev.secretName });
  const done = (outcome: KeyVaultEventResult['outcome'], reason: string, appId?: string): KeyVaultEventResult => {
    log.info(`Key Vault ${ev.type} for ${ev.secretName}: ${outcome} (${reason})`, appId ? { appId } : {});
    return { outcome, reason, event: summary, ...(appId ? { appId } : {}) };
  };

  if (ev.type === 'SecretNewVersionCreated') return done('ignored', 'new versions need no action');

  const candidates = deps.policy.rotate.filter((r) => sameVault(r.vaultUrl, ev.vaultUrl) && r.secretName.toLowerCase() === ev.secretName.toLowerCase());
  if (candidates.length === 0) return done('ignored', 'the policy rotates no app into this secret');

  const versions = await deps.secrets.versions(ev.vaultUrl, ev.secretName);
  const latest = latestVersion(versions);
  const eventVersion = versions.find((v) => v.version.toLowerCase() === ev.version.toLowerCase());
  const taggedApp = tagValue((eventVersion ?? latest)?.tags ?? {}, TAG_APP_ID)?.toLowerCase();
  const rotation = taggedApp ? candidates.find((r) => r.appId.toLowerCase() === taggedApp) : candidates[0];
  if (!rotation) return done('ignored', `the secret's ${TAG_APP_ID} tag names app ${taggedApp ?? '?'}, which the policy does not rotate into it`);
  const appId = rotation.appId.toLowerCase();

  if (latest && latest.version.toLowerCase() !== ev.version.toLowerCase()) {
    const newer = !eventVersion || (latest.createdOn?.getTime() ?? 0) >= (eventVersion.createdOn?.getTime() ?? 0);
    const healthy = latest.enabled && (!latest.expiresOn || latest.expiresOn.getTime() > deps.clock.now().getTime() + deps.policy.rotateDaysBefore * DAY_MS);
    if (newer && healthy) return done('skipped', `already rotated: version ${latest.version} is current`, appId);
  }

  await deps.enqueue([
    {
      capability: 'credentials',
      target: appId,
      reason: `Key Vault ${ev.type} for secret ${ev.secretName} version ${ev.version}`,
      trigger: trigger ?? { kind: 'event', id: ev.id },
    },
  ]);
  return done('enqueued', 'reconcile queued', appId);
}

function isNormalized(input: unknown): input is NormalizedEvent {
  return (
    typeof input === 'object' &&
    input !== null &&
    'schema' in input &&
    'type' in input &&
    'source' in input &&
    ((input as { schema: unknown }).schema === 'EventGridSchema' || (input as { schema: unknown }).schema === 'CloudEventSchemaV1_0')
  );
}
