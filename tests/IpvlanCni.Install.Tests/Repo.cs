using System.Diagnostics;
using System.Text;

namespace IpvlanCni.Install.Tests;

/// <summary>The repository, its artifacts (built by make before the tests) and a runner for their commands.</summary>
static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Version { get; } = File.ReadAllText(Path.Join(Root, "VERSION")).Trim();

    /// <summary>The published executable: artifacts/cni/bin/ipvlan-cni as `make publish` leaves it.</summary>
    public static string Plugin => Artifact(Path.Join("cni", "bin", "ipvlan-cni"), "make publish");

    /// <summary>What install copies: ipvlan-cni and the companions it execs, by name, as published beside it.</summary>
    public static IReadOnlyList<(string Name, string Path)> Executables =>
        [.. new[] { "ipvlan-cni", "ipvlan-cni-agent", "ipvlan-cni-explain", "ipvlan-cni-install" }
            .Select(name => (name, Artifact(System.IO.Path.Join("cni", "bin", name), "make publish")))];

    /// <summary>Copies the published executables into <paramref name="folder"/>, as a folder install can run from.</summary>
    public static void CopyExecutables(string folder)
    {
        foreach (var (name, path) in Executables)
            File.Copy(path, System.IO.Path.Join(folder, name));
    }

    public static string Deb => Artifact($"ipvlan-cni_{Version}_amd64.deb", "make deb");

    public static string Image => $"localhost/ipvlan-cni:{Version}";

    public static string Podman => Path.Join(Root, "packaging", "image", "podman");

    public static string Artifact(string relative, string make)
    {
        string path = Path.Join(Root, "artifacts", relative);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: run {make} first (make test does)");
    }

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Join(dir.FullName, "IpvlanCni.slnx")))
                return dir.FullName;
        throw new DirectoryNotFoundException("the repository (IpvlanCni.slnx) is not above the test's folder");
    }
}

public sealed record Outcome(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

static class Command
{
    /// <summary>Runs a program to its end within <paramref name="timeout"/> (killed and failed after it).</summary>
    public static Outcome Run(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null,
        TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Repo.Root,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        foreach (var (key, value) in env ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not end within {timeout ?? TimeSpan.FromMinutes(2)}");
        }
        process.WaitForExit();
        return new Outcome(process.ExitCode, stdout.Result, stderr.Result);
    }

    public static Outcome Run(string file, params string[] args) => Run(file, (IEnumerable<string>)args);

    /// <summary>Runs and asserts exit status 0, showing everything the program said when it is not.</summary>
    public static Outcome Succeed(string file, params string[] args)
    {
        var outcome = Run(file, args);
        Assert.True(outcome.ExitCode == 0, $"{file} {string.Join(' ', args)}: {outcome}");
        return outcome;
    }
}

/// <summary>A folder under /tmp removed when the test ends.</summary>
sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("ipvlan-cni-install-").FullName;

    public string Sub(string name)
    {
        string path = System.IO.Path.Join(Path, name);
        Directory.CreateDirectory(path);
        return path;
    }

    public string File(string name, string content)
    {
        string path = System.IO.Path.Join(Path, name);
        System.IO.File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
