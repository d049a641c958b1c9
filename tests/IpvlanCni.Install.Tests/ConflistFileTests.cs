using System.Diagnostics;

namespace IpvlanCni.Install.Tests;

/// <summary>install --conflist reads through the one bounded reader: a FIFO or a device is refused at once, not read.</summary>
public class ConflistFileTests
{
    [Fact]
    public void A_fifo_or_a_device_as_conflist_is_refused_promptly()
    {
        var folder = Directory.CreateTempSubdirectory().FullName;
        try
        {
            string fifo = Path.Combine(folder, "fifo.conflist");
            using (var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [fifo]) { UseShellExecute = false })!)
                mkfifo.WaitForExit();
            string zero = Path.Combine(folder, "zero.conflist");
            File.CreateSymbolicLink(zero, "/dev/zero");
            string big = Path.Combine(folder, "big.conflist");
            File.WriteAllText(big, new string(' ', 70 * 1024));
            foreach (var (path, problem) in new[] { (fifo, "not a regular file"), (zero, "not a regular file"), (big, "larger than") })
            {
                var clock = Stopwatch.StartNew();
                var e = Assert.Throws<InstallException>(() => Conflist.Read(path));
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{path} took {clock.Elapsed}");
                Assert.Equal(InstallProblem.InvalidConflist, e.Problem);
                Assert.Contains(problem, e.Message);
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
