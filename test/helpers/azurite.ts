// Moved to tools/azurite.ts (the demo needs it too); kept so existing test imports stay valid.
export { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, startAzurite, type Azurite } from '../../tools/azurite';
