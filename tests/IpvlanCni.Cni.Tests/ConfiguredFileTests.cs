using System.Diagnostics;

namespace IpvlanCni.Cni.Tests;

/// <summary>
/// The log file a configuration names is typed before it is opened for writing: a FIFO is never opened (a reader
/// waiting in open(2) on it stays waiting), a symlink is refused, and a refused log costs the command nothing.
/// </summary>
public class ConfiguredFileTests
{
    static string Fifo(string folder)
    {
        string path = Path.Combine(folder, "fifo");
        using var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    static CniLogEntry Entry() => new(DateTimeOffset.UtcNow, "ADD", "c1", "eth0", "net1", TimeSpan.FromMilliseconds(3), null);

    [Fact]
    public void A_fifo_as_log_file_is_refused_without_being_opened()
    {
        var folder = Directory.CreateTempSubdirectory().FullName;
        try
        {
            string fifo = Fifo(folder);
            // Blocks in open(2) until someone opens the FIFO for writing.
            var reader = Task.Run(() =>
            {
                using var stream = new FileStream(fifo, FileMode.Open, FileAccess.Read);
                return stream.ReadByte();
            });
            Thread.Sleep(100);
            var log = new CniLog(fifo);
            var clock = Stopwatch.StartNew();
            log.Write(Entry());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed}");
            Assert.Contains("is not a regular file", log.LastFailure);
            Thread.Sleep(300);
            Assert.False(reader.IsCompleted, "the log write opened the FIFO (its reader's open returned)");
            using (new FileStream(fifo, FileMode.Open, FileAccess.Write)) { } // lets the reader go
            Assert.Equal(-1, reader.Result);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_symlink_as_log_file_is_refused_and_its_target_untouched()
    {
        var folder = Directory.CreateTempSubdirectory().FullName;
        try
        {
            string target = Path.Combine(folder, "target");
            File.WriteAllText(target, "");
            File.CreateSymbolicLink(Path.Combine(folder, "link"), target);
            var log = new CniLog(Path.Combine(folder, "link"));
            log.Write(Entry());
            Assert.Contains("is a symbolic link", log.LastFailure);
            Assert.Equal("", File.ReadAllText(target));

            var real = new CniLog(Path.Combine(folder, "new.log"));
            real.Write(Entry());
            real.Write(Entry());
            Assert.Null(real.LastFailure);
            Assert.Equal(2, File.ReadAllLines(Path.Combine(folder, "new.log")).Length);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
