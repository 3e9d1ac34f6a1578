package main

// The "sftp" subsystem of `sshtap serve`: pkg/sftp's request server over a
// session, its files confined to one directory by os.Root (no path, ".."
// or symbolic link leads out of it).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/pkg/sftp"

	"sshtap"
)

// sftpRoot serves the files under one directory; the client sees it as
// "/".
type sftpRoot struct {
	root *os.Root
}

// serveSFTP runs the sftp subsystem on ss until the client closes it.
func serveSFTP(ss *sshtap.ServerSession, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	h := &sftpRoot{root: root}
	// The session's end (and its exit status) is the caller's: pkg/sftp
	// closes its stream when it stops.
	rs := sftp.NewRequestServer(keepOpen{ss}, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
	err = rs.Serve()
	rs.Close()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// keepOpen is a session whose Close leaves it open.
type keepOpen struct{ *sshtap.ServerSession }

func (keepOpen) Close() error { return nil }

// rel turns the client's path (absolute, "/" being the root) into one
// relative to the root.
func rel(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return "."
	}
	return p[1:]
}

// Fileread opens a file to read (Get).
func (h *sftpRoot) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	return h.root.Open(rel(r.Filepath))
}

// openFlags maps the request's SSH_FXF flags to os.OpenFile's.
func openFlags(r *sftp.Request) int {
	pf := r.Pflags()
	f := os.O_WRONLY
	if pf.Read {
		f = os.O_RDWR
	}
	if pf.Creat {
		f |= os.O_CREATE
	}
	if pf.Trunc {
		f |= os.O_TRUNC
	}
	if pf.Excl {
		f |= os.O_EXCL
	}
	return f
}

// Filewrite opens a file to write (Put).
func (h *sftpRoot) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	return h.root.OpenFile(rel(r.Filepath), openFlags(r), 0o644)
}

// OpenFile opens a file to read and write (Open).
func (h *sftpRoot) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	return h.root.OpenFile(rel(r.Filepath), openFlags(r)&^os.O_WRONLY|os.O_RDWR, 0o644)
}

// Filecmd runs the commands that return no data.
func (h *sftpRoot) Filecmd(r *sftp.Request) error {
	p := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		return h.setstat(p, r)
	case "Rename":
		// draft-ietf-secsh-filexfer-02 §6.5: "It is an error if there
		// already exists a file with the name specified by newpath."
		if _, err := h.root.Lstat(rel(r.Target)); err == nil {
			return os.ErrExist
		}
		return h.root.Rename(p, rel(r.Target))
	case "PosixRename": // posix-rename@openssh.com replaces the target
		return h.root.Rename(p, rel(r.Target))
	case "Rmdir", "Remove":
		// RMDIR removes directories only, REMOVE files only.
		fi, err := h.root.Lstat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() != (r.Method == "Rmdir") {
			if fi.IsDir() {
				return fmt.Errorf("%s is a directory", r.Filepath)
			}
			return fmt.Errorf("%s is not a directory", r.Filepath)
		}
		return h.root.Remove(p)
	case "Mkdir":
		return h.root.Mkdir(p, 0o755)
	case "Link":
		return h.root.Link(p, rel(r.Target))
	}
	// Symlink: a link's target is not confined to the root when it is
	// followed by others on this machine; not offered.
	return sftp.ErrSSHFxOpUnsupported
}

func (h *sftpRoot) setstat(p string, r *sftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.Size {
		f, err := h.root.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := h.root.Chmod(p, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := h.root.Chtimes(p, time.Unix(int64(attrs.Atime), 0), time.Unix(int64(attrs.Mtime), 0)); err != nil {
			return err
		}
	}
	return nil
}

// Filelist lists a directory (List) or stats a path (Stat).
func (h *sftpRoot) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := rel(r.Filepath)
	switch r.Method {
	case "List":
		d, err := h.root.Open(p)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		entries, err := d.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		infos := make([]fs.FileInfo, 0, len(entries))
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				infos = append(infos, fi)
			}
		}
		return listerAt(infos), nil
	case "Stat":
		fi, err := h.root.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

// Lstat stats a path without following a final symbolic link.
func (h *sftpRoot) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	fi, err := h.root.Lstat(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	return listerAt{fi}, nil
}

// listerAt serves a list of file infos from an offset.
type listerAt []fs.FileInfo

func (l listerAt) ListAt(dst []fs.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}
