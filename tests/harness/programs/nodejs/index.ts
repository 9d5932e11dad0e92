// The integration harness's TypeScript program: one stack that declares every webhook the
// harness plans for TypeScript, on the generated Node SDK. The hooks come from the stack's
// configuration, so the harness changes them between `pulumi up`s by changing configuration
// only; each hook names the provider it is managed through: "embedded" (the SQLite store the
// server also uses) or "remote" (the server's REST API).
import * as pulumi from "@pulumi/pulumi";
import * as pulumiservice from "@pulumi-webhooks/pulumiservice";

interface HookConfig {
    name: string;
    provider: "embedded" | "remote";
    organizationName: string;
    projectName?: string;
    stackName?: string;
    environmentName?: string;
    displayName: string;
    payloadUrl: string;
    active: boolean;
    format?: string;
    filters?: string[];
    groups?: string[];
    // secretKey names the hook's secret in the secret configuration value hookSecrets.
    secretKey?: string;
}

const config = new pulumi.Config();
const hooks = config.requireObject<HookConfig[]>("hooks");
const secrets = config.requireSecretObject<Record<string, string>>("hookSecrets");

const providers: Record<HookConfig["provider"], pulumiservice.Provider> = {
    embedded: new pulumiservice.Provider("embedded", { storePath: config.require("storePath") }),
    remote: new pulumiservice.Provider("remote", {
        apiUrl: config.require("apiUrl"),
        accessToken: config.requireSecret("accessToken"),
    }),
};

const ids: Record<string, pulumi.Output<string>> = {};
for (const h of hooks) {
    const secretKey = h.secretKey;
    const hook = new pulumiservice.Webhook(
        h.name,
        {
            organizationName: h.organizationName,
            projectName: h.projectName,
            stackName: h.stackName,
            environmentName: h.environmentName,
            displayName: h.displayName,
            payloadUrl: h.payloadUrl,
            active: h.active,
            format: h.format as pulumiservice.WebhookFormat | undefined,
            filters: h.filters?.map((f) => f as pulumiservice.WebhookFilters),
            groups: h.groups?.map((g) => g as pulumiservice.WebhookGroup),
            secret: secretKey ? secrets.apply((s) => s[secretKey]) : undefined,
        },
        { provider: providers[h.provider] },
    );
    ids[h.name] = hook.id;
}

export const hookIds = ids;
