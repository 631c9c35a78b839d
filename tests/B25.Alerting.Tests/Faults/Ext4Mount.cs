using System.Diagnostics;

namespace B25.Alerting.Tests.Faults;

/// <summary>
/// A small ext4 filesystem on a loop device, mounted in a temporary folder (needs root). Files in it
/// can be made immutable (chattr +i): every write to them fails, also through descriptors already
/// open, as on a disk that turned read-only; chattr -i makes them writable again. (A tmpfs cannot be
/// remounted read-only while SQLite holds its files open: the kernel answers EBUSY.)
/// </summary>
public sealed class Ext4Mount : IDisposable
{
    private readonly string _image;
    private readonly string? _device;

    private Ext4Mount(string folder, string image, string device)
    {
        Folder = folder;
        _image = image;
        _device = device;
    }

    public string Folder { get; }

    public static Ext4Mount Create(int megabytes = 32)
    {
        var root = Path.Combine(Path.GetTempPath(), $"b25-ext4-{Guid.NewGuid():N}");
        var folder = Path.Combine(root, "mnt");
        Directory.CreateDirectory(folder);
        var image = Path.Combine(root, "disk.img");
        using (var file = File.Create(image)) file.SetLength(megabytes * 1024L * 1024);
        Run("mkfs.ext4", "-q", "-F", image);
        var device = Run("losetup", "-f", "--show", image).Trim();
        try
        {
            Run("mount", device, folder);
        }
        catch
        {
            Run("losetup", "-d", device);
            throw;
        }
        return new Ext4Mount(folder, image, device);
    }

    /// <summary>
    /// Makes the files in the folder immutable (true) or writable again (false), all but SQLite's shared
    /// memory file (-shm): it is mapped into memory, and a write fault on an immutable mapping is SIGBUS,
    /// which kills the process instead of failing a write.
    /// </summary>
    public void Immutable(bool on)
    {
        foreach (var file in Directory.GetFiles(Folder).Where(f => !f.EndsWith("-shm", StringComparison.Ordinal)))
            Chattr(on, file);
    }

    /// <summary>chattr +i (true) or -i (false) on one file or folder of an ext4 filesystem.</summary>
    public static void Chattr(bool immutable, string path) => Run("chattr", immutable ? "+i" : "-i", path);

    public void Dispose()
    {
        try { Immutable(false); } catch (Exception) { }
        try { Chattr(false, Folder); } catch (Exception) { }
        try { Run("umount", "-l", Folder); } catch (Exception) { }
        if (_device is not null) try { Run("losetup", "-d", _device); } catch (Exception) { }
        try { Directory.Delete(Path.GetDirectoryName(_image)!, recursive: true); } catch (Exception) { }
    }

    private static string Run(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {error}");
        return output;
    }
}
