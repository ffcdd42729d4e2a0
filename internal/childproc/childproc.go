package childproc
