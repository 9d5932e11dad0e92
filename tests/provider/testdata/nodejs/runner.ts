// Runs one Automation API operation on an inline program: the compiled example module, loaded
// inside the program function. The CLI runs it with --client, so no Node language host is used.
//
//   node runner.js '<params JSON>'   prints {"changes": {...}, "outputs": {...}} on stdout
import * as automation from "@pulumi/pulumi/automation";

interface Params {
    action: "up" | "preview" | "destroy";
    workDir: string;
    project: string;
    stack: string;
    program: string;
    config: Record<string, { value: string; secret?: boolean }>;
}

async function main(): Promise<void> {
    const p: Params = JSON.parse(process.argv[2]);
    const stack = await automation.LocalWorkspace.createOrSelectStack(
        {
            projectName: p.project,
            stackName: p.stack,
            program: async () => ({ ...require(p.program) }),
        },
        { workDir: p.workDir },
    );
    await stack.setAllConfig(p.config);
    const log = (s: string) => process.stderr.write(s);
    let result: { changes?: Record<string, number>; outputs?: Record<string, unknown> };
    switch (p.action) {
        case "up": {
            const r = await stack.up({ onOutput: log });
            const outputs: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(r.outputs)) {
                outputs[k] = v.value;
            }
            result = { changes: r.summary.resourceChanges, outputs };
            break;
        }
        case "preview": {
            const r = await stack.preview({ onOutput: log, expectNoChanges: true });
            result = { changes: r.changeSummary };
            break;
        }
        case "destroy": {
            const r = await stack.destroy({ onOutput: log });
            result = { changes: r.summary.resourceChanges };
            break;
        }
        default:
            throw new Error(`unknown action ${p.action}: use up, preview or destroy`);
    }
    process.stdout.write(JSON.stringify(result));
}

main().catch((err) => {
    process.stderr.write(`runner failed: ${err}\n`);
    process.exit(1);
});
