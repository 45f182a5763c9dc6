/** API keys now live in `shared/http/api-keys.ts` (the send and read APIs share them); kept for existing importers. */
export { ApiKeyStore, bearerToken, generateApiKey, hashApiKey, loadApiKeyStore, readApiKeysFile, type ApiKey } from '../../shared/http/api-keys.js';
