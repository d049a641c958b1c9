using System.Diagnostics;
using IpvlanCni.Kernel.Tests.Support;
using IpvlanCni.Plugin;
using IpvlanCni.Scenarios;

namespace IpvlanCni.Kernel.Tests.Reliability;

/// <summary>
/// kill -9 in the middle of ADD, at every named step and at random moments: the attachment record written first lets
/// DEL (or GC) remove everything the dead ADD had done, and nothing else.
/// </summary>
public class CrashConsistencyTests : KernelTest
{
    /// <summary>Random SIGKILLs per run of `make test`; IPVLANCNI_CRASH_KILLS raises it.</summary>
    static int RandomKills => int.TryParse(Environment.GetEnvironmentVariable("IPVLANCNI_CRASH_KILLS"), out int n) && n > 0 ? n : 6;

    const int Killed = 137; // 128 + SIGKILL

    static Dictionary<string, string> AddEnvironment(TestPod pod, string containerId, string? fault = null)
    {
        var env = CniRuntime.Environment("ADD", containerId, pod.Path, "eth0");
        if (fault is not null)
            env[FaultPoints.Variable] = fault;
        return env;
    }

    /// <summary>The node after one full ADD/DEL: the lock files and folders exist, nothing else of ours does.</summary>
    static NodeSnapshot Baseline(TestNode node, PluginRunner cni, System.Text.Json.Nodes.JsonObject config)
    {
        NodeSnapshot.Take(node); // reads (so creates) the nat tables: the backend every snapshot compares
        var pod = node.AddPod();
        cni.Add(config, pod, "warmup").Succeeded();
        cni.Del(config, pod, "warmup").Succeeded();
        Assert.Empty(Residue.Files(cni));
        return NodeSnapshot.Take(node);
    }

    static void AssertNothingLeft(TestNode node, PluginRunner cni, NodeSnapshot baseline, IEnumerable<TestPod> pods, string what)
    {
        Assert.True(Residue.Files(cni).Count == 0, $"{what}: left {string.Join(", ", Residue.Files(cni))}");
        foreach (var pod in pods)
            Assert.True(Residue.PodLinks(pod).Count == 0, $"{what}: pod {pod.Name} still has {string.Join(", ", Residue.PodLinks(pod))}");
        NodeSnapshot.Take(node).AssertSameAs(baseline, what);
    }

    [Fact]
    public void A_crash_at_every_step_of_add_is_undone_by_del()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "crash");
        var baseline = Baseline(node, cni, config);

        foreach (string step in FaultPoints.AddSteps)
        {
            var pod = node.AddPod();
            var crashed = cni.RunRaw(AddEnvironment(pod, "c1", $"{step}:crash"), config.ToJsonString());
            Assert.True(crashed.ExitCode == Killed, $"{step}: expected SIGKILL: {crashed}");

            cni.Del(config, pod, "c1").Succeeded();
            AssertNothingLeft(node, cni, baseline, [pod], $"DEL after a crash at {step}");
        }
    }

    [Fact]
    public void Sigkill_at_random_moments_of_add_is_undone_by_del()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "kill");
        var baseline = Baseline(node, cni, config);

        // Kill anywhere from before main to after the last step: up to a little more than a whole ADD takes here.
        // Timed warm (the first ADD of a node is slower), so that early kills really land inside an ADD.
        var pod0 = node.AddPod();
        cni.Add(config, pod0, "timing").Succeeded();
        cni.Del(config, pod0, "timing").Succeeded();
        var clock = Stopwatch.StartNew();
        cni.Add(config, pod0, "timing").Succeeded();
        int addTime = (int)clock.ElapsedMilliseconds + 1;
        int window = (int)(addTime * 1.2) + 1;
        cni.Del(config, pod0, "timing").Succeeded();

        int seed = Environment.TickCount;
        var random = new Random(seed);
        var outcomes = new Dictionary<string, int>();
        for (int i = 0; i < RandomKills; i++)
        {
            var pod = node.AddPod();
            // The first kill lands in the first half of an ADD for sure; the others anywhere, after its end included.
            int delay = i == 0 ? random.Next(addTime / 2 + 1) : random.Next(window);
            var call = cni.RunRawAndKill(AddEnvironment(pod, $"k{i}"), config.ToJsonString(), TimeSpan.FromMilliseconds(delay));
            string outcome = call.ExitCode switch { Killed => "killed", 0 => "finished", _ => $"exit {call.ExitCode}" };
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;

            cni.Del(config, pod, $"k{i}").Succeeded();
            AssertNothingLeft(node, cni, baseline, [pod], $"DEL after SIGKILL at {delay} ms of {window} (seed {seed}, {outcome})");
        }
        Assert.True(outcomes.GetValueOrDefault("killed") > 0, $"no ADD was killed in a {window} ms window (seed {seed})");
    }

    [Fact]
    public void Gc_with_no_valid_attachments_cleans_up_after_crashes_at_every_step()
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "crashgc");
        var baseline = Baseline(node, cni, config);

        var pods = new List<TestPod>();
        foreach (string step in FaultPoints.AddSteps)
        {
            var pod = node.AddPod();
            pods.Add(pod);
            var crashed = cni.RunRaw(AddEnvironment(pod, $"g-{step}", $"{step}:crash"), config.ToJsonString());
            Assert.True(crashed.ExitCode == Killed, $"{step}: expected SIGKILL: {crashed}");
        }
        Assert.NotEmpty(Residue.Files(cni));

        cni.Gc(config).Succeeded();
        AssertNothingLeft(node, cni, baseline, pods, "GC after crashes");
    }
}

/// <summary>
/// SIGKILL at every system call of ADD, DEL and GC that changes state (not only at the named steps): strace counts
/// the plugin's unlinks, renames, folder creations and netlink sends, then, run after run, kills the plugin at the
/// first, the second, ... of them (strace's fault injection, signal=SIGKILL when=N). After each kill the next DEL or
/// GC must leave the node exactly as it was, NAT rules and the node's registry included. `make test` kills at every
/// third call; `make soak` (IPVLANCNI_CRASH_STRIDE=1) at every one.
/// </summary>
public class SyscallCrashTests : KernelTest
{
    const string Strace = "/usr/bin/strace";
    const string StateChanging = "unlink,unlinkat,rename,renameat,renameat2,mkdir,mkdirat,sendto,sendmsg";

    static int Stride => int.TryParse(Environment.GetEnvironmentVariable("IPVLANCNI_CRASH_STRIDE"), out int n) && n > 0 ? n : 3;

    /// <summary>
    /// Runs the plugin under strace, tracing the state-changing calls; with <paramref name="killAt"/> = (syscall, k) it
    /// is killed on entering its k-th call of that syscall (strace counts per syscall and per thread; --seccomp-bpf
    /// would be faster but disables injection).
    /// </summary>
    static ProgramResult Traced(PluginRunner cni, Dictionary<string, string> env, string stdin, string traceFile, (string Call, int Nth)? killAt)
    {
        Assert.True(File.Exists(Strace), $"{Strace} is missing ('make deps' installs strace)");
        var args = new List<string> { "-f", "-qq", "-o", traceFile, "-e", $"trace={StateChanging}" };
        if (killAt is var (call, nth))
            args.AddRange(["-e", $"inject={call}:signal=SIGKILL:when={nth}"]);
        args.Add(CniRuntime.PluginPath);
        return Programs.Run(cni.Node.Namespace, Strace, args, env, stdin, inheritEnvironment: false);
    }

    /// <summary>
    /// The state-changing calls of the plugin's main thread (the first pid in the trace) in order, each as (syscall,
    /// its how-many-th call of that syscall): the places a kill can land.
    /// </summary>
    static List<(string Call, int Nth)> Calls(string traceFile)
    {
        var lines = File.ReadAllLines(traceFile).Where(l => l.Length > 0 && char.IsAsciiDigit(l[0])).ToList();
        Assert.NotEmpty(lines);
        string main = lines[0].Split(' ')[0];
        var seen = new Dictionary<string, int>();
        var calls = new List<(string, int)>();
        foreach (string line in lines)
        {
            var fields = line.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries);
            // Another thread, a resumed call ("<... sendto resumed>"), a signal ("--- SIGCHLD"), an exit ("+++").
            if (fields[0] != main || fields.Length < 2 || System.Text.RegularExpressions.Regex.Match(fields[1], @"^(\w+)\(") is not { Success: true } start)
                continue;
            string call = start.Groups[1].Value;
            seen[call] = seen.GetValueOrDefault(call) + 1;
            calls.Add((call, seen[call]));
        }
        return calls;
    }

    [Theory]
    [InlineData("ADD")]
    [InlineData("DEL")]
    [InlineData("GC")]
    public void Sigkill_at_every_state_changing_system_call_leaves_what_the_next_del_or_gc_removes(string command)
    {
        using var node = new TestNode();
        var cni = new PluginRunner(node);
        var config = Residue.FullConfig(cni, "sys" + command.ToLowerInvariant());
        config["master"] = $"{node.MasterName}.600"; // a VLAN the first ADD creates and the last DEL removes
        string trace = $"/tmp/{node.Name}/trace";
        NodeSnapshot.Take(node); // reads (so creates) the nat tables: the backend every snapshot compares
        var warm = node.AddPod();
        cni.Add(config, warm, "warmup").Succeeded();
        cni.Del(config, warm, "warmup").Succeeded();
        var baseline = NodeSnapshot.Take(cni);

        // Prepares the node for one run and returns the request to kill; Finish cleans up as a runtime would.
        (Dictionary<string, string> Env, string Stdin) Prepare(TestPod pod, string id)
        {
            switch (command)
            {
                case "ADD":
                    return (CniRuntime.Environment("ADD", id, pod.Path, "eth0"), config.ToJsonString());
                case "DEL":
                    cni.Add(config, pod, id).Succeeded();
                    return (CniRuntime.Environment("DEL", id, pod.Path, "eth0"), config.ToJsonString());
                default:
                    cni.Add(config, pod, id).Succeeded();
                    var gc = config.DeepClone();
                    gc["cni.dev/valid-attachments"] = new System.Text.Json.Nodes.JsonArray();
                    return (CniRuntime.Environment("GC", "", "", ""), gc.ToJsonString());
            }
        }
        void Finish(TestPod pod, string id)
        {
            if (command == "GC")
                cni.Gc(config).Succeeded($"GC after a killed GC ({id})");
            else
                cni.Del(config, pod, id).Succeeded($"DEL after a killed {command} ({id})");
        }

        // One clean traced run counts the calls a kill can land on.
        var countPod = node.AddPod();
        var (countEnv, countStdin) = Prepare(countPod, "count");
        var counted = Traced(cni, countEnv, countStdin, trace, killAt: null);
        Assert.True(counted.ExitCode == 0, $"traced {command}: {counted.ExitCode} {counted.StdOut} {counted.StdErr}");
        var places = Calls(trace);
        int calls = places.Count;
        if (command == "ADD")
            Finish(countPod, "count");
        NodeSnapshot.Take(cni).AssertSameAs(baseline, $"the counting {command}");

        int killed = 0;
        for (int n = 1; n <= calls; n += n == calls ? 1 : Math.Min(Stride, Math.Max(1, calls - n)))
        {
            var pod = node.AddPod();
            string id = $"k{n}";
            var (env, stdin) = Prepare(pod, id);
            var run = Traced(cni, env, stdin, trace, killAt: places[n - 1]);
            if (run.ExitCode != 0)
                killed++;
            Finish(pod, id);
            string where = $"{places[n - 1].Call} #{places[n - 1].Nth} (state-changing call {n} of {calls})";
            Assert.True(Residue.PodLinks(pod).Count == 0, $"{command} killed at {where}: pod still has {string.Join(", ", Residue.PodLinks(pod))}");
            NodeSnapshot.Take(cni).AssertSameAs(baseline, $"{command} killed at {where}, then {(command == "GC" ? "GC" : "DEL")}");
        }
        Assert.True(killed > 0, $"no {command} was killed in {calls} calls");
    }
}
