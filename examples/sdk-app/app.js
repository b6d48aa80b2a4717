// The example app: everything it does with keystead goes through the SDK
// module that keystead serves at /sdk/keystead.js.

const params = new URLSearchParams(location.search);
for (const [key, name] of [["apiKey", "example.apiKey"], ["keystead", "example.keystead"]]) {
  if (params.get(key)) sessionStorage.setItem(name, params.get(key));
}
const apiKey = sessionStorage.getItem("example.apiKey");
const baseUrl = sessionStorage.getItem("example.keystead");
const $ = (id) => document.getElementById(id);
const show = (e) => { $("error").textContent = e.code ? `${e.message} (${e.code})` : String(e.message ?? e); };

async function main() {
  if (!apiKey || !baseUrl) {
    throw new Error("open this page with ?apiKey=pk_…&keystead=https://your-keystead");
  }
  const { Keystead } = await import(new URL("/sdk/keystead.js", baseUrl).href);
  const ks = new Keystead({ apiKey, baseUrl });
  await ks.init();

  // Back from the sign-in? Trade the login code for a session.
  try {
    await ks.completeLogin();
  } catch (e) {
    show(e);
  }

  const session = ks.session;
  if (!session) {
    const label = ks.config.authConfig?.oidcConfig?.buttonLabel;
    if (label) {
      const button = $("sign-in");
      button.textContent = label;
      button.hidden = false;
      const returnTo = location.origin + location.pathname;
      const loginHint = params.get("loginHint") ?? undefined;
      button.onclick = () => ks.authenticateWithOAuth({ method: "CUSTOM_OIDC", returnTo, loginHint }).catch(show);
    } else {
      $("no-method").hidden = false;
    }
    return;
  }

  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  $("user").textContent = session.user.id;
  const wallets = await ks.getWallets();
  const evm = wallets.find((w) => w.type === "EVM");
  $("address").textContent = evm?.address ?? "(none)";
  $("sign").onclick = async () => {
    try {
      const { signature } = await ks.signMessage({ walletId: evm.id, message: $("message").value });
      $("signature").textContent = signature;
    } catch (e) {
      show(e);
    }
  };
  $("sign-out").onclick = async () => {
    await ks.logout().catch(show);
    location.reload();
  };
}

main().catch(show);
