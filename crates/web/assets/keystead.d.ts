// Types of /sdk/keystead.js (SPEC §9).

export interface OidcButton { enabled: boolean; buttonLabel: string }
export interface SdkConfig { authConfig: { methods: string[]; oidcConfig?: OidcButton } }

export interface Wallet {
  id: string;
  type: "EVM" | "SOLANA" | "COSMOS";
  status: string;
  address: string;
  publicKey: string;
  createdAt: string;
  userIdentifier?: string;
  userIdentifierType?: string;
}

export interface Identity { issuer: string; sub: string; email: string | null }
export interface User { id: string; identities: Identity[] }
export interface Me { user: User; wallets: Wallet[] }
export interface Session extends Me { session_token: string; expires_at: string }

export declare class KeysteadError extends Error {
  /** A SPEC §6 error code, e.g. "login_code_invalid". */
  readonly code: string;
  readonly hint: string | null;
}

export declare class Keystead {
  constructor(options: { apiKey: string; baseUrl: string; storage?: Storage });
  readonly apiKey: string;
  readonly baseUrl: string;
  config: SdkConfig | null;
  readonly session: Session | null;
  init(): Promise<SdkConfig>;
  authenticateWithOAuth(options: {
    method: "CUSTOM_OIDC";
    returnTo: string;
    state?: string;
    loginHint?: string;
  }): Promise<void>;
  completeLogin(url?: string): Promise<Session | null>;
  me(): Promise<Me>;
  getWallets(): Promise<Wallet[]>;
  signMessage(options: { walletId: string; message: string }): Promise<{ signature: string }>;
  logout(): Promise<void>;
}

export default Keystead;
