export default async function globalTeardown(): Promise<void> {
  await globalThis.__WARDEN_AZURITE__?.stop();
}
