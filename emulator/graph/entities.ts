/**
 * JSON shapes of directory objects as Graph v1.0 returns them: every property the emulator knows,
 * and the smaller default set a read without `$select` gets (users leave out `accountEnabled` and
 * `userType`, per the facts' Addenda).
 */
import type { Application, DirectoryObject, Group, KeyCredential, PasswordCredential, ServicePrincipal, User } from './state';
import { badRequest, pick, unknownProperties } from './odata';

export const ODATA_TYPE: Record<DirectoryObject['type'], string> = {
  User: '#microsoft.graph.user',
  Group: '#microsoft.graph.group',
  ServicePrincipal: '#microsoft.graph.servicePrincipal',
};

/** OData cast segment → principal type. */
export const CASTS: Record<string, DirectoryObject['type']> = {
  'microsoft.graph.user': 'User',
  'microsoft.graph.group': 'Group',
  'microsoft.graph.serviceprincipal': 'ServicePrincipal',
};

const USER_DEFAULT = [
  'businessPhones', 'displayName', 'givenName', 'jobTitle', 'mail', 'mobilePhone', 'officeLocation',
  'preferredLanguage', 'surname', 'userPrincipalName', 'id',
];

export function userRecord(u: User): Record<string, unknown> {
  return {
    id: u.id,
    deletedDateTime: null,
    accountEnabled: u.accountEnabled,
    businessPhones: [],
    city: null,
    companyName: null,
    country: null,
    createdDateTime: u.createdDateTime,
    department: null,
    displayName: u.displayName,
    employeeId: null,
    givenName: null,
    jobTitle: null,
    mail: u.mail,
    mailNickname: u.userPrincipalName.split('@')[0] ?? null,
    mobilePhone: null,
    officeLocation: null,
    onPremisesSyncEnabled: null,
    otherMails: [],
    preferredLanguage: null,
    proxyAddresses: u.mail ? [`SMTP:${u.mail}`] : [],
    surname: null,
    usageLocation: null,
    userPrincipalName: u.userPrincipalName,
    userType: u.userType,
  };
}

export function groupRecord(g: Group): Record<string, unknown> {
  return {
    id: g.id,
    deletedDateTime: null,
    classification: null,
    createdDateTime: g.createdDateTime,
    creationOptions: [],
    description: g.description,
    displayName: g.displayName,
    expirationDateTime: null,
    groupTypes: [],
    isAssignableToRole: null,
    mail: null,
    mailEnabled: g.mailEnabled,
    mailNickname: g.displayName.replace(/[^A-Za-z0-9]/g, '').slice(0, 64) || g.id.slice(0, 8),
    membershipRule: null,
    membershipRuleProcessingState: null,
    onPremisesSyncEnabled: null,
    preferredDataLocation: null,
    proxyAddresses: [],
    renewedDateTime: g.createdDateTime,
    resourceBehaviorOptions: [],
    resourceProvisioningOptions: [],
    securityEnabled: g.securityEnabled,
    securityIdentifier: `S-1-12-1-${g.id.replace(/[^0-9]/g, '').slice(0, 10) || '0'}`,
    theme: null,
    visibility: null,
  };
}

export function servicePrincipalRecord(sp: ServicePrincipal): Record<string, unknown> {
  return {
    id: sp.id,
    deletedDateTime: null,
    accountEnabled: sp.accountEnabled,
    appDisplayName: sp.displayName,
    appId: sp.appId,
    appOwnerOrganizationId: null,
    appRoleAssignmentRequired: false,
    createdDateTime: sp.createdDateTime,
    description: null,
    displayName: sp.displayName,
    notes: null,
    servicePrincipalNames: [sp.appId],
    servicePrincipalType: 'Application',
    signInAudience: 'AzureADMyOrg',
    tags: [],
  };
}

export function passwordCredentialJson(p: PasswordCredential): Record<string, unknown> {
  return {
    customKeyIdentifier: null,
    displayName: p.displayName,
    endDateTime: p.endDateTime,
    hint: p.hint,
    keyId: p.keyId,
    secretText: null,
    startDateTime: p.startDateTime,
  };
}

export function keyCredentialJson(k: KeyCredential): Record<string, unknown> {
  return {
    customKeyIdentifier: null,
    displayName: k.displayName,
    endDateTime: k.endDateTime,
    key: null,
    keyId: k.keyId,
    startDateTime: k.startDateTime,
    type: k.type,
    usage: k.usage,
  };
}

export function applicationRecord(a: Application): Record<string, unknown> {
  return {
    id: a.id,
    deletedDateTime: null,
    appId: a.appId,
    applicationTemplateId: null,
    createdDateTime: a.createdDateTime,
    description: null,
    displayName: a.displayName,
    groupMembershipClaims: null,
    identifierUris: [],
    isFallbackPublicClient: null,
    keyCredentials: a.keyCredentials.map(keyCredentialJson),
    notes: null,
    passwordCredentials: a.passwordCredentials.map(passwordCredentialJson),
    publisherDomain: 'contoso.example',
    signInAudience: 'AzureADMyOrg',
    tags: [],
    uniqueName: null,
  };
}

export function objectRecord(o: DirectoryObject): Record<string, unknown> {
  switch (o.type) {
    case 'User':
      return userRecord(o.value);
    case 'Group':
      return groupRecord(o.value);
    case 'ServicePrincipal':
      return servicePrincipalRecord(o.value);
  }
}

function defaults(o: DirectoryObject, record: Record<string, unknown>): Record<string, unknown> {
  return o.type === 'User' ? pick(record, USER_DEFAULT) : record;
}

/** One object as its own resource (`GET /users/{id}`): unknown `$select` names are a 400. */
export function projectSingle(o: DirectoryObject, select: string[] | undefined, withType = false): Record<string, unknown> {
  const record = objectRecord(o);
  if (select) {
    const unknown = unknownProperties(record, select);
    if (unknown.length > 0) {
      throw badRequest(`Could not find a property named '${unknown[0]}' on type '${ODATA_TYPE[o.type].slice(1)}'.`);
    }
  }
  const body = select ? pick(record, select) : defaults(o, record);
  return withType ? { '@odata.type': ODATA_TYPE[o.type], ...body } : body;
}

/** One object inside a directoryObject collection: `@odata.type` first, properties the type lacks omitted. */
export function projectInCollection(o: DirectoryObject, select: string[] | undefined): Record<string, unknown> {
  const record = objectRecord(o);
  return { '@odata.type': ODATA_TYPE[o.type], ...(select ? pick(record, select) : defaults(o, record)) };
}

/** A `$select` for a directoryObject collection must name a property of at least one member type. */
export function checkCollectionSelect(select: string[] | undefined): void {
  if (!select) return;
  const known = new Set(
    [
      ...Object.keys(userRecord({ id: '', displayName: '', userPrincipalName: '', mail: null, accountEnabled: true, userType: 'Member', createdDateTime: '' })),
      ...Object.keys(groupRecord({ id: '', displayName: '', description: null, securityEnabled: true, mailEnabled: false, createdDateTime: '', members: new Map(), ranges: [] })),
      ...Object.keys(servicePrincipalRecord({ id: '', appId: '', displayName: '', accountEnabled: true, createdDateTime: '' })),
    ].map((k) => k.toLowerCase()),
  );
  const bad = select.find((s) => !known.has(s.toLowerCase()));
  if (bad) throw badRequest(`Could not find a property named '${bad}' on type 'microsoft.graph.directoryObject'.`);
}
